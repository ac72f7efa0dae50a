package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/idgraph/idgraph/match"
)

// showProgress reports a bulk run's progress on stderr until the
// returned function is called: on a terminal a bar redrawn in place
// twice a second, otherwise (a log, CI) a plain line every 15 seconds.
func showProgress(p *match.Progress) (stop func()) {
	tty := false
	if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		tty = true
	}
	every := 15 * time.Second
	if tty {
		every = 500 * time.Millisecond
	}
	return reportProgress(p, os.Stderr, tty, every)
}

func reportProgress(p *match.Progress, w io.Writer, tty bool, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		start := time.Now()
		var phase string
		for {
			select {
			case <-done:
				if tty && phase != "" {
					fmt.Fprintln(w)
				}
				return
			case now := <-t.C:
				st := p.Snapshot()
				if st.Phase != phase && tty && phase != "" {
					fmt.Fprintln(w)
				}
				if phase = st.Phase; phase == "" {
					continue
				}
				line := progressLine(st.Phase, st.Unit, st.Done, st.Total, now.Sub(st.Started), now.Sub(start))
				if tty {
					fmt.Fprint(w, "\r"+line+"\x1b[K")
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine is one progress report: the phase, a bar when its size is
// known, the rate and the time left at that rate, and the run's time.
func progressLine(phase, unit string, done, total int64, inPhase, inRun time.Duration) string {
	const width = 30
	run := inRun.Round(time.Second)
	if total <= 0 {
		return fmt.Sprintf("%-10s %s (run %s)", phase, inPhase.Round(time.Second), run)
	}
	frac := min(float64(done)/float64(total), 1)
	fill := int(frac * width)
	rate := float64(done) / max(inPhase.Seconds(), 1e-3)
	left := "–"
	if rate > 0 && done < total {
		left = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	perSecond := count(int64(rate))
	if rate < 10 { // rules of a blocking plan take seconds each
		perSecond = fmt.Sprintf("%.1f", rate)
	}
	return fmt.Sprintf("%-10s [%s%s] %3.0f%% %s/%s %s, %s/s, %s left (run %s)",
		phase, strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100,
		count(done), count(total), unit, perSecond, left, run)
}

// count writes a number in thousands or millions.
func count(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
