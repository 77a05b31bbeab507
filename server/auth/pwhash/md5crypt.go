package pwhash

import (
	"crypto/md5"
	"errors"
	"strings"
)

// MD5Crypt computes the md5-crypt hash of password with the salt of
// setting ("$1$salt" or a whole "$1$salt$hash"), as FreeBSD's and glibc's
// crypt(3) do: salt up to 8 characters, 1000 rounds.
func MD5Crypt(password, setting string) (string, error) {
	const magic = "$1$"
	if !strings.HasPrefix(setting, magic) {
		return "", errors.New("pwhash: not an md5-crypt hash")
	}
	salt := setting[len(magic):]
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)

	alt := md5.New()
	alt.Write(pw)
	alt.Write([]byte(salt))
	alt.Write(pw)
	altSum := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write([]byte(salt))
	for n := len(pw); n > 0; n -= 16 {
		ctx.Write(altSum[:min(n, 16)])
	}
	// A quirk of the original: a set bit adds a NUL, a clear bit the
	// password's first byte.
	for i := len(pw); i != 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)

	for i := 0; i < 1000; i++ {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write([]byte(salt))
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(final[:0])
	}

	out := []byte(magic + salt + "$")
	out = b64From24(out, final[0], final[6], final[12], 4)
	out = b64From24(out, final[1], final[7], final[13], 4)
	out = b64From24(out, final[2], final[8], final[14], 4)
	out = b64From24(out, final[3], final[9], final[15], 4)
	out = b64From24(out, final[4], final[10], final[5], 4)
	out = b64From24(out, 0, 0, final[11], 2)
	return string(out), nil
}
