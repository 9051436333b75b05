package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ringfence/ringfence/internal/atomicfile"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// File names inside the state directory.
const (
	stateFile = "state.json"
	outboxDir = "outbox"
	// rejectedDir (under the outbox) keeps the events the server refused,
	// each with a .why file: out of the way of later check-ins, never
	// deleted.
	rejectedDir = "rejected"
	baselineDir = "baselines"
	lockFile    = "lock"
)

// State is what the agent keeps between runs in its state directory. It is
// written as a whole, atomically, under the directory's lock.
type State struct {
	// InstanceID identifies this installation; generated at the first start.
	InstanceID string `json:"instance_id"`
	// Pinned are the answer-signing keys the agent trusts.
	Pinned []sign.PublicKey `json:"pinned_keys"`
	// PinnedFrom says where the keys came from (a trust file, or
	// trust-on-first-use from the server).
	PinnedFrom string `json:"pinned_from,omitempty"`
	// Revoked are the key ids the trust file revokes: never trusted.
	Revoked []string `json:"revoked_keys,omitempty"`
	// Learned are keys learnt during key rotations, each vouched for by a
	// trusted key (see LearnedKey).
	Learned []LearnedKey `json:"learned_keys,omitempty"`
	// HandoverError says why the latest answer's key handover taught
	// nothing ("" when it taught what it named, or named nothing).
	HandoverError string `json:"key_handover_error,omitempty"`
	// Version is the version reported in the last successful check-in.
	Version release.Version `json:"version,omitzero"`
	// Last is the last verified answer, with what is needed to verify it
	// again.
	Last *KeptAnswer `json:"last_answer,omitempty"`
	// LastAttempt is when the last check-in was tried; LastError why it
	// failed (empty after a success).
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// Failures counts check-ins failed in a row (backoff).
	Failures int `json:"failures,omitempty"`
	// NextDue is when the running agent means to check in next.
	NextDue time.Time `json:"next_due,omitzero"`
	// UnpinnedSigners are key ids that signed recent answers but are
	// neither pinned nor learned (a key rotation the operator should
	// follow).
	UnpinnedSigners []string `json:"unpinned_signers,omitempty"`
	// FailedUpgrades are the versions an upgrade to failed here (reported
	// and delivered), by version, until an upgrade to them succeeds:
	// preflight refuses them rather than loop on a failing upgrade.
	FailedUpgrades map[string]release.Event `json:"failed_upgrades,omitempty"`
	// Databases is the last watch result per database, by label.
	Databases map[string]*DatabaseHealth `json:"databases,omitempty"`
	// Offline is the air-gapped state (bundles, offline reports); nil for
	// an installation that never ran offline. See bundle.go.
	Offline *OfflineState `json:"offline,omitempty"`
}

// KeptAnswer is a verified answer as kept on disk: the envelope exactly as
// received, and the nonce and instance id it must echo. It is re-verified
// whenever it is read.
type KeptAnswer struct {
	Envelope   sign.Envelope `json:"envelope"`
	Nonce      string        `json:"nonce"`
	InstanceID string        `json:"instance_id"`
	ReceivedAt time.Time     `json:"received_at"`
}

// StateDir is the agent's state directory: state.json, the outbox of
// undelivered events, agent-owned collation baselines and a lock file.
// Directories are 0700, files 0600; every file is replaced atomically
// (temporary file, fsync, rename, fsync of the directory).
type StateDir struct {
	dir string
}

// OpenStateDir opens (creating when missing) the state directory dir.
func OpenStateDir(dir string) (*StateDir, error) {
	if dir == "" {
		return nil, errors.New("no state directory (set --state or RINGFENCE_AGENT_STATE)")
	}
	for _, d := range []string{dir, filepath.Join(dir, outboxDir), filepath.Join(dir, outboxDir, rejectedDir), filepath.Join(dir, baselineDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		// A directory made by someone else (a test, an operator) is made
		// private too, where we own it.
		if err := os.Chmod(d, 0o700); err != nil && !errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("make state directory private: %w", err)
		}
	}
	return &StateDir{dir: dir}, nil
}

// Path returns the directory's path.
func (s *StateDir) Path() string { return s.dir }

// Load reads state.json; a missing file is an empty state.
func (s *StateDir) Load() (*State, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read agent state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("read agent state %s: %w (the file is damaged: move it away to start afresh, losing the instance id)",
			filepath.Join(s.dir, stateFile), err)
	}
	return &st, nil
}

// Save writes state.json atomically.
func (s *StateDir) Save(st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode agent state: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, stateFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	return nil
}

// Lock takes the directory's exclusive lock, waiting until ctx is done: one
// check-in at a time, whichever process (run, preflight, report --now) does
// it. The returned function releases it.
func (s *StateDir) Lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock state directory: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock state directory (another agent process holds it): %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// QueuedEvent is an event in the outbox, with the file that holds it.
type QueuedEvent struct {
	// Name is the file's name in the outbox (ordered by queueing time).
	Name  string        `json:"name"`
	Event release.Event `json:"event"`
}

// Enqueue validates e and writes it to the outbox durably (fsynced file and
// directory) before returning: once Enqueue returns, the event survives a
// crash and stays until an answer to a check-in that carried it verifies.
// Its detail is cleaned first (release.CleanText): a log excerpt with
// Windows line ends or colour codes must not make the server refuse it.
func (s *StateDir) Enqueue(e release.Event) (string, error) {
	e.Detail = release.CleanText(e.Detail)
	if err := e.Validate(); err != nil {
		return "", fmt.Errorf("queue event: %s", release.ErrorMessage(err))
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("queue event: %w", err)
	}
	// The name orders events by queueing time; the random tail keeps two
	// processes from colliding.
	name := fmt.Sprintf("%020d-%s.json", time.Now().UnixNano(), strings.ToLower(rand.Text()[:10]))
	if err := atomicfile.Write(filepath.Join(s.dir, outboxDir, name), data, 0o600); err != nil {
		return "", fmt.Errorf("queue event: %w", err)
	}
	return name, nil
}

// Outbox returns the undelivered events, oldest first. A file that cannot
// be decoded is left out here, and left in place: the next check-in moves
// it to outbox/rejected and logs it (setAsideUndecodable), and status lists
// it from there. Nothing is dropped silently.
func (s *StateDir) Outbox() ([]QueuedEvent, error) {
	out, _, err := s.readOutbox()
	return out, err
}

// readOutbox reads the outbox, oldest first: the events, and the names of
// the files that do not decode as one.
func (s *StateDir) readOutbox() (events []QueuedEvent, undecodable map[string]error, err error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, outboxDir))
	if err != nil {
		return nil, nil, fmt.Errorf("read outbox: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	events = make([]QueuedEvent, 0, len(names))
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(s.dir, outboxDir, n))
		if errors.Is(err, fs.ErrNotExist) { // delivered meanwhile by another process
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read outbox: %w", err)
		}
		var e release.Event
		if derr := json.Unmarshal(data, &e); derr != nil {
			if undecodable == nil {
				undecodable = map[string]error{}
			}
			undecodable[n] = derr
			continue
		}
		events = append(events, QueuedEvent{Name: n, Event: e})
	}
	return events, undecodable, nil
}

// RejectedEvent is an event the server refused (or a file of the outbox
// that is no event), moved out of the outbox with why.
type RejectedEvent struct {
	Name string `json:"name"`
	Why  string `json:"why"`
}

// Reject moves the outbox file name to outbox/rejected/ with a .why file
// holding why: later check-ins go on without it, and it stays for the
// operator (status lists it).
func (s *StateDir) Reject(name, why string) error {
	dir := filepath.Join(s.dir, outboxDir, rejectedDir)
	if err := atomicfile.Write(filepath.Join(dir, name+".why"), []byte(why+"\n"), 0o600); err != nil {
		return fmt.Errorf("reject outbox event: %w", err)
	}
	if err := os.Rename(filepath.Join(s.dir, outboxDir, name), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("reject outbox event: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Join(s.dir, outboxDir))
}

// Rejected lists the rejected events, oldest first.
func (s *StateDir) Rejected() ([]RejectedEvent, error) {
	dir := filepath.Join(s.dir, outboxDir, rejectedDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read rejected events: %w", err)
	}
	var out []RejectedEvent
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, ".why") || strings.HasPrefix(n, ".") {
			continue
		}
		why, err := os.ReadFile(filepath.Join(dir, n+".why"))
		if err != nil {
			why = []byte("(why not readable: " + err.Error() + ")")
		}
		out = append(out, RejectedEvent{Name: n, Why: strings.TrimSpace(string(why))})
	}
	return out, nil
}

// Delivered removes events from the outbox (after a verified answer to the
// check-in that carried them) and syncs the directory.
func (s *StateDir) Delivered(names []string) error {
	dir := filepath.Join(s.dir, outboxDir)
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove delivered event: %w", err)
		}
	}
	return atomicfile.SyncDir(dir)
}

// baselinePath is where the agent keeps the collation baseline of the
// database labelled label when the database holds none of its own.
func (s *StateDir) baselinePath(label string) string {
	return filepath.Join(s.dir, baselineDir, label+".json")
}

// newInstanceID returns a random installation id (26 characters of base32,
// 130 random bits).
func newInstanceID() string { return "rf-" + strings.ToLower(rand.Text()) }
