package pwhash

import (
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuMkpasswd is the CPU time (user+system, from rusage) of one
// `mkpasswd args` process: this machine's wall clock is shared with
// other work, so CPU time is what compares.
func cpuMkpasswd(b *testing.B, args ...string) time.Duration {
	cmd := exec.Command("mkpasswd", append(args, "-s")...)
	cmd.Stdin = strings.NewReader("secret-password")
	if out, err := cmd.Output(); err != nil {
		b.Fatalf("mkpasswd %v: %v %s", args, err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// cpuSelf is this process's CPU time so far.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkYescryptVsMkpasswd compares this package's yescrypt with
// Debian's mkpasswd (libxcrypt) for the same parameters, interleaved,
// medians of 9 CPU times: mkpasswd's less a process start (mkpasswd -m
// md5crypt, ~0.1 ms of hashing) against one Yescrypt call (process CPU,
// GC included). It fails above 2×. Run: make bench-auth.
func BenchmarkYescryptVsMkpasswd(b *testing.B) {
	for _, R := range []string{"1", "3", "5", "7"} {
		b.Run("R="+R, func(b *testing.B) {
			setting := mkpasswd(b, "secret-password", "-m", "yescrypt", "-R", R)
			var ours, theirs, start []time.Duration
			for i := 0; i < 9; i++ {
				start = append(start, cpuMkpasswd(b, "-m", "md5crypt"))
				theirs = append(theirs, cpuMkpasswd(b, "-m", "yescrypt", "-R", R))
				runtime.GC()
				t0 := cpuSelf()
				if _, err := Yescrypt("secret-password", setting); err != nil {
					b.Fatal(err)
				}
				ours = append(ours, cpuSelf()-t0)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Yescrypt("secret-password", setting)
			}
			o, th, st := median(ours), median(theirs), median(start)
			net := th - st
			ratio := float64(o) / float64(net)
			b.ReportMetric(float64(o.Microseconds())/1000, "cpu-ms/ours")
			b.ReportMetric(float64(net.Microseconds())/1000, "cpu-ms/mkpasswd")
			b.ReportMetric(ratio, "ratio")
			b.Logf("%s: CPU ours %v, mkpasswd %v (process %v, start %v), ratio %.2f", setting[:7], o, net, th, st, ratio)
			if ratio > 2 {
				b.Errorf("yescrypt %s: %.2f× mkpasswd's CPU time (ours %v, mkpasswd %v)", setting[:7], ratio, o, net)
			}
		})
	}
}

// BenchmarkYescrypt is Debian's default cost (N=4096, r=32, pre-hashed).
func BenchmarkYescrypt(b *testing.B) {
	setting := "$y$j9T$60yIkWphVtlRs2IxNcvid1$i8PjEaS/tg9Xf3DVLnBDRFxWl2aSKEQE4whkNQJMg11"
	for i := 0; i < b.N; i++ {
		if _, err := Yescrypt("secret", setting); err != nil {
			b.Fatal(err)
		}
	}
}
