package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/ringfence/ringfence/pgcheck"
)

// progressView renders pgcheck progress: bars (one overall, one per job)
// on a terminal, plain log lines at most once a second otherwise.
type progressView struct {
	out  io.Writer
	tty  bool
	jobs int

	mu    sync.Mutex // serialises Update and Close
	p     *mpb.Progress
	total *mpb.Bar
	db    string
	last  time.Time

	// workers is read by the bars' render goroutine: it has its own lock,
	// never held while calling into mpb.
	workerMu sync.Mutex
	workers  []string
}

// isTerminal reports whether w is a terminal that wants live output.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

func newProgressView(out io.Writer, jobs int, quiet bool) *progressView {
	if quiet {
		return nil
	}
	return &progressView{out: out, tty: isTerminal(out), jobs: max(jobs, 1)}
}

// Update is a pgcheck progress callback.
func (v *progressView) Update(p pgcheck.Progress) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		if p.Total > 0 && (p.Done == p.Total || time.Since(v.last) >= time.Second) {
			v.last = time.Now()
			fmt.Fprintf(v.out, "check %s: %d/%d checks, %s of %s\n", p.Database, p.Done, p.Total,
				humanBytes(p.BytesDone), humanBytes(p.BytesTotal))
		}
		return
	}
	if p.Database != v.db {
		v.finishLocked()
		v.db = p.Database
		v.workerMu.Lock()
		v.workers = make([]string, v.jobs)
		v.workerMu.Unlock()
		v.p = mpb.New(mpb.WithOutput(v.out), mpb.WithWidth(40))
		v.total = v.p.New(max(p.BytesTotal, 1), mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(p.Database+" "), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage()))
		for w := range v.jobs {
			v.p.New(1, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
				v.workerMu.Lock()
				defer v.workerMu.Unlock()
				if w < len(v.workers) && v.workers[w] != "" {
					return fmt.Sprintf("  job %d: %s", w+1, v.workers[w])
				}
				return fmt.Sprintf("  job %d: idle", w+1)
			})))
		}
	}
	// Tasks are added in stages: the total grows.
	v.total.SetTotal(max(p.BytesTotal, 1), false)
	v.workerMu.Lock()
	if p.Worker < len(v.workers) {
		v.workers[p.Worker] = p.Current
	}
	v.workerMu.Unlock()
	v.total.SetCurrent(p.BytesDone)
}

// Close stops the bars.
func (v *progressView) Close() {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.finishLocked()
}

func (v *progressView) finishLocked() {
	if v.p == nil {
		return
	}
	v.total.SetTotal(-1, true)
	v.p.Shutdown()
	v.p = nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
