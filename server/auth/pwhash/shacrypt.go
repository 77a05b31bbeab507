package pwhash

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt limits from Drepper's specification.
const (
	shaRoundsDefault = 5000
	shaRoundsMin     = 1000
	shaRoundsMax     = 999999999
	shaSaltMax       = 16
)

// The byte order in which the final digest is written out, three bytes
// (b2, b1, b0) to four characters.
var (
	sha256Order = [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}}
	sha512Order = func() [][3]int {
		var o [][3]int
		for k := 0; k < 21; k++ {
			x, y, z := k, k+21, k+42
			switch k % 3 {
			case 0:
				o = append(o, [3]int{x, y, z})
			case 1:
				o = append(o, [3]int{y, z, x})
			default:
				o = append(o, [3]int{z, x, y})
			}
		}
		return o
	}()
)

// SHACrypt computes the sha256-crypt ($5$) or sha512-crypt ($6$) hash of
// password with the salt and rounds of setting ("$6$salt",
// "$6$rounds=N$salt", or a whole hash).
func SHACrypt(password, setting string) (string, error) {
	var newHash func() hash.Hash
	var magic string
	switch {
	case strings.HasPrefix(setting, "$5$"):
		newHash, magic = sha256.New, "$5$"
	case strings.HasPrefix(setting, "$6$"):
		newHash, magic = sha512.New, "$6$"
	default:
		return "", errors.New("pwhash: not a SHA-crypt hash")
	}
	rest := setting[len(magic):]
	rounds, customRounds := shaRoundsDefault, false
	if strings.HasPrefix(rest, "rounds=") {
		end := strings.IndexByte(rest, '$')
		if end < 0 {
			return "", errors.New("pwhash: SHA-crypt rounds without salt")
		}
		n, err := strconv.ParseUint(rest[len("rounds="):end], 10, 64)
		if err != nil {
			return "", errors.New("pwhash: malformed SHA-crypt rounds")
		}
		rounds = int(min(max(n, shaRoundsMin), shaRoundsMax))
		customRounds = true
		rest = rest[end+1:]
	}
	salt := rest
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > shaSaltMax {
		salt = salt[:shaSaltMax]
	}
	pw, s := []byte(password), []byte(salt)

	b := newHash()
	b.Write(pw)
	b.Write(s)
	b.Write(pw)
	bSum := b.Sum(nil)
	size := len(bSum)

	a := newHash()
	a.Write(pw)
	a.Write(s)
	n := len(pw)
	for ; n > size; n -= size {
		a.Write(bSum)
	}
	a.Write(bSum[:n])
	for i := len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(bSum)
		} else {
			a.Write(pw)
		}
	}
	aSum := a.Sum(nil)

	dp := newHash()
	for range len(pw) {
		dp.Write(pw)
	}
	dpSum := dp.Sum(nil)
	p := make([]byte, 0, len(pw))
	for len(p)+size <= len(pw) {
		p = append(p, dpSum...)
	}
	p = append(p, dpSum[:len(pw)-len(p)]...)

	ds := newHash()
	for range 16 + int(aSum[0]) {
		ds.Write(s)
	}
	dsSum := ds.Sum(nil)
	sq := make([]byte, 0, len(s))
	for len(sq)+size <= len(s) {
		sq = append(sq, dsSum...)
	}
	sq = append(sq, dsSum[:len(s)-len(sq)]...)

	c := newHash()
	for i := 0; i < rounds; i++ {
		c.Reset()
		if i&1 != 0 {
			c.Write(p)
		} else {
			c.Write(aSum)
		}
		if i%3 != 0 {
			c.Write(sq)
		}
		if i%7 != 0 {
			c.Write(p)
		}
		if i&1 != 0 {
			c.Write(aSum)
		} else {
			c.Write(p)
		}
		aSum = c.Sum(aSum[:0])
	}

	out := []byte(magic)
	if customRounds {
		out = append(out, "rounds="+strconv.Itoa(rounds)+"$"...)
	}
	out = append(out, salt...)
	out = append(out, '$')
	if size == 32 {
		for _, t := range sha256Order {
			out = b64From24(out, aSum[t[0]], aSum[t[1]], aSum[t[2]], 4)
		}
		out = b64From24(out, 0, aSum[31], aSum[30], 3)
	} else {
		for _, t := range sha512Order {
			out = b64From24(out, aSum[t[0]], aSum[t[1]], aSum[t[2]], 4)
		}
		out = b64From24(out, 0, 0, aSum[63], 2)
	}
	return string(out), nil
}
