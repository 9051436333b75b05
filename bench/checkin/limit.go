package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the same pure-Go driver the store uses

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// limitServer does the irreducible work of a check-in and nothing else, as
// the yardstick ringfence is measured against: a strict JSON decode, the
// enrollment key looked up by its SHA-256, an in-memory decision (offer the
// newest version to anyone below it), the answer in canonical JSON signed
// once with ed25519, and the installation's row upserted into SQLite (WAL,
// synchronous=FULL) by a group-committing writer. Like ringfence, routine
// check-ins do not wait for their commit; check-ins carrying events are
// answered only once their events are committed.
type limitServer struct {
	keys   map[[32]byte]string // SHA-256 of an enrollment key → customer
	ring   *sign.KeyRing
	latest release.Version
	ttl    time.Duration
	db     *sql.DB
	queue  chan limitRecord
	hs     *http.Server
	url    string
	done   chan struct{}
}

// limitRecord is one check-in for the writer; done, if set, is closed (after
// err is set) once the record is committed.
type limitRecord struct {
	customer, instanceID, version, health string
	events                                []limitEvent
	at                                    time.Time
	done                                  chan error
}

// limitCheckIn is the check-in body as the minimal server decodes it: the
// same fields ringfence accepts, unknown fields rejected.
type limitCheckIn struct {
	InstanceID string `json:"instance_id"`
	Product    string `json:"product"`
	Version    string `json:"version"`
	Nonce      string `json:"nonce"`
	Health     *struct {
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
	} `json:"health,omitempty"`
	Events []limitEvent `json:"events,omitempty"`
}

type limitEvent struct {
	Kind   string    `json:"kind"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// startLimitServer starts the minimal server on loopback with its own SQLite
// file in dir, accepting keys (enrollment keys → customer).
func startLimitServer(dir string, keys map[string]string, latest string) (*limitServer, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "limit.db")+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE installations (customer TEXT NOT NULL, instance_id TEXT NOT NULL,
		version TEXT NOT NULL, health TEXT NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
		PRIMARY KEY (customer, instance_id));
		CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL, instance_id TEXT NOT NULL,
		kind TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL, at TIMESTAMP NOT NULL, detail TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("limit server schema: %w", err)
	}
	key, err := sign.GenerateKey(rand.Reader, time.Now())
	if err != nil {
		db.Close()
		return nil, err
	}
	ring, err := sign.NewKeyRing(key)
	if err != nil {
		db.Close()
		return nil, err
	}
	v, err := release.ParseVersion(latest)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &limitServer{keys: map[[32]byte]string{}, ring: ring, latest: v, ttl: release.DefaultAnswerTTL,
		db: db, queue: make(chan limitRecord, 4096), done: make(chan struct{})}
	for k, customer := range keys {
		s.keys[sha256.Sum256([]byte(k))] = customer
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/checkin", s.checkIn)
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	go s.write()
	return s, nil
}

// close stops serving, drains the writer and closes the database.
func (s *limitServer) close() {
	s.hs.Close()
	close(s.queue)
	<-s.done
	s.db.Close()
}

func (s *limitServer) checkIn(w http.ResponseWriter, r *http.Request) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	customer, known := s.keys[sha256.Sum256([]byte(secret))]
	if !ok || !known {
		http.Error(w, "unknown enrollment key", http.StatusUnauthorized)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, release.DefaultMaxCheckInBytes))
	dec.DisallowUnknownFields()
	var c limitCheckIn
	if err := dec.Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		http.Error(w, "trailing data", http.StatusBadRequest)
		return
	}
	v, err := release.ParseVersion(c.Version)
	if err != nil || c.InstanceID == "" || c.Nonce == "" {
		http.Error(w, "bad check-in", http.StatusBadRequest)
		return
	}
	now := time.Now().UTC()
	ans := release.Answer{InstanceID: c.InstanceID, Nonce: c.Nonce, IssuedAt: now, ExpiresAt: now.Add(s.ttl),
		Current: release.Current{Version: v, Status: release.StatusOK, Action: release.ActionNone}, Notices: []release.Notice{}}
	if v.Less(s.latest) {
		ans.Offer = &release.Offer{Version: s.latest}
	}
	env, err := s.ring.SignJSON(ans)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rec := limitRecord{customer: customer, instanceID: c.InstanceID, version: c.Version, health: "unknown", events: c.Events, at: now}
	if c.Health != nil {
		rec.health = c.Health.Status
	}
	if len(c.Events) > 0 {
		rec.done = make(chan error, 1)
	}
	s.queue <- rec
	if rec.done != nil {
		if err := <-rec.done; err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(env)
}

// write commits queued records in groups: it takes what is queued (up to 512
// records), commits them in one transaction and tells the waiters.
func (s *limitServer) write() {
	defer close(s.done)
	for first := range s.queue {
		batch := []limitRecord{first}
	gather:
		for len(batch) < 512 {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		err := s.commit(batch)
		for _, r := range batch {
			if r.done != nil {
				r.done <- err
			}
		}
	}
}

func (s *limitServer) commit(batch []limitRecord) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Multi-row statements, as few as SQLite's parameter limit allows: one
	// upsert per 500 installations, one insert per 500 events. A batch
	// holding one installation twice keeps its last record.
	latest := make(map[[2]string]int, len(batch))
	for i, r := range batch {
		latest[[2]string{r.customer, r.instanceID}] = i
	}
	var rows [][]any
	var events [][]any
	for i, r := range batch {
		if latest[[2]string{r.customer, r.instanceID}] == i {
			rows = append(rows, []any{r.customer, r.instanceID, r.version, r.health, r.at})
		}
		for _, e := range r.events {
			events = append(events, []any{r.customer, r.instanceID, e.Kind, e.From, e.To, e.At, e.Detail})
		}
	}
	if err := insertMany(ctx, tx, `INSERT INTO installations (customer, instance_id, version, health, first_seen, last_seen) VALUES `,
		`(?, ?, ?, ?, ?, ?)`, func(r []any) []any { return append(r, r[4]) },
		` ON CONFLICT (customer, instance_id) DO UPDATE SET version = excluded.version, health = excluded.health, last_seen = excluded.last_seen`,
		rows); err != nil {
		return err
	}
	if err := insertMany(ctx, tx, `INSERT INTO events (customer, instance_id, kind, from_version, to_version, at, detail) VALUES `,
		`(?, ?, ?, ?, ?, ?, ?)`, func(r []any) []any { return r }, "", events); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return errors.Join(errors.New("commit"), err)
	}
	return nil
}

// insertMany runs head + one tuple per row (args from each row through
// args) + tail, 500 rows per statement.
func insertMany(ctx context.Context, tx *sql.Tx, head, tuple string, args func([]any) []any, tail string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), 500)
		var b strings.Builder
		b.WriteString(head)
		var vals []any
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(tuple)
			vals = append(vals, args(r)...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), vals...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}
