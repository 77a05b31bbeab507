package pwhash

import (
	"os"
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

// loadavg is the 1-minute load average, logged with each figure: the
// machine is shared, and the figures mean little without it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// BenchmarkYescryptVsMkpasswd compares this package's yescrypt with
// Debian's mkpasswd (libxcrypt) for the same parameters (the setting
// mkpasswd made, so N, r, flavour and salt length are the same),
// interleaved, medians of 9 CPU times (user+system):
//
//   - mkpasswd: one process `mkpasswd -m yescrypt -R R`, less the median
//     of one process `mkpasswd -m md5crypt` (process start, dynamic
//     loading, about 0.1 ms of hashing): the hash's own time. The whole
//     process time is reported too (ratio-process).
//   - ours: one Yescrypt call, process CPU (all threads), right after a
//     runtime.GC(), so any GC work the call causes or that the forced
//     GC leaves running in the background counts against us; V comes
//     from the pool (the pool survives one GC).
//   - ours cold: the same after two runtime.GC(), which empty the pool:
//     V is allocated afresh, as libxcrypt allocates it for every hash.
//
// It fails when either of ours is above 2× mkpasswd's hash time.
// R=3 is N=1024 r=32 (4 MiB, cache-sized, no pre-hash), R=5 Debian's
// default N=4096 r=32. Run: make bench-auth; go test -tags purego for the
// pure-Go pwxform.
func BenchmarkYescryptVsMkpasswd(b *testing.B) {
	for _, R := range []string{"1", "3", "5", "7"} {
		b.Run("R="+R, func(b *testing.B) {
			setting := mkpasswd(b, "secret-password", "-m", "yescrypt", "-R", R)
			p, _, _, err := ParseYescrypt(setting)
			if err != nil {
				b.Fatal(err)
			}
			load0 := loadavg()
			var ours, cold, theirs, start []time.Duration
			measure := func(gcs int) time.Duration {
				for k := 0; k < gcs; k++ {
					runtime.GC()
				}
				t0 := cpuSelf()
				if _, err := Yescrypt("secret-password", setting); err != nil {
					b.Fatal(err)
				}
				return cpuSelf() - t0
			}
			for i := 0; i < 9; i++ {
				start = append(start, cpuMkpasswd(b, "-m", "md5crypt"))
				theirs = append(theirs, cpuMkpasswd(b, "-m", "yescrypt", "-R", R))
				ours = append(ours, measure(1))
				cold = append(cold, measure(2))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Yescrypt("secret-password", setting)
			}
			b.StopTimer()
			o, oc, th, st := median(ours), median(cold), median(theirs), median(start)
			net := th - st
			ratio := float64(o) / float64(net)
			ratioCold := float64(oc) / float64(net)
			b.ReportMetric(float64(o.Microseconds())/1000, "cpu-ms/ours")
			b.ReportMetric(float64(oc.Microseconds())/1000, "cpu-ms/ours-cold")
			b.ReportMetric(float64(net.Microseconds())/1000, "cpu-ms/mkpasswd")
			b.ReportMetric(ratio, "ratio")
			b.ReportMetric(ratioCold, "ratio-cold")
			b.ReportMetric(float64(o)/float64(th), "ratio-process")
			b.Logf("%s N=%d r=%d: CPU ours %v (cold %v), mkpasswd %v (process %v, start %v), ratio %.2f (cold %.2f, to the whole process %.2f), load %s-%s",
				setting[:7], p.N, p.R, o, oc, net, th, st, ratio, ratioCold, float64(o)/float64(th), load0, loadavg())
			if ratio > 2 || ratioCold > 2 {
				b.Errorf("yescrypt %s: %.2f× (cold %.2f×) mkpasswd's CPU time (ours %v, cold %v, mkpasswd %v)", setting[:7], ratio, ratioCold, o, oc, net)
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
