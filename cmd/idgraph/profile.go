package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// memoryLimitFlag is the --memory-limit flag of the bulk commands.
func memoryLimitFlag(fs *flag.FlagSet) *int64 {
	return fs.Int64("memory-limit", 3072, "MB: a soft limit on the Go heap (the garbage collector works harder near it); 0 for none; GOMEMLIMIT overrides it")
}

// setMemoryLimit sets the garbage collector's soft limit unless the
// GOMEMLIMIT environment variable did. Without one the heap may grow to
// twice what is live before a collection: a bulk run with 2 GB live
// would take 4 GB of the machine.
func setMemoryLimit(mb int64) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set || mb <= 0 {
		return
	}
	debug.SetMemoryLimit(mb << 20)
}

// startProfiles starts a CPU profile into cpuPath and, for memPath, a
// heap profile taken at the run's peak: a profile written at exit shows
// what is live after the work is done, not what made the process big, so
// a sampler rewrites the file each time the live heap grows past its
// previous high by a tenth. Empty paths turn either off. The returned
// function stops both and reports the first error.
func startProfiles(cpuPath, memPath string) (func() error, error) {
	var stops []func() error
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		stops = append(stops, func() error {
			pprof.StopCPUProfile()
			return f.Close()
		})
	}
	if memPath != "" {
		done := make(chan struct{})
		var wg sync.WaitGroup
		var werr error
		var peak uint64
		write := func() {
			f, err := os.Create(memPath)
			if err == nil {
				err = pprof.Lookup("heap").WriteTo(f, 0)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil && werr == nil {
				werr = fmt.Errorf("heap profile: %w", err)
			}
		}
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				metrics.Read(sample)
				if live := sample[0].Value.Uint64(); live > peak+peak/10 {
					peak = live
					// The heap profile is as of the last GC; collect so
					// that it shows what is live now.
					runtime.GC()
					write()
				}
			}
		}()
		stops = append(stops, func() error {
			close(done)
			wg.Wait()
			if peak == 0 {
				write() // a run too short for the sampler
			}
			return werr
		})
	}
	return func() error {
		var first error
		for _, s := range stops {
			if err := s(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}
