package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the same pure-Go driver the store uses

	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// limitServer does the irreducible work of a check-in and nothing else, as
// the yardstick ringfence is measured against: a strict JSON decode (unknown
// fields and trailing data rejected), the enrollment key looked up by its
// SHA-256, an in-memory decision (offer the newest version to anyone below
// it), the answer in canonical JSON signed once with ed25519, and the
// installation's row upserted into SQLite (WAL, synchronous=FULL) by a
// group-committing writer. Like ringfence, routine check-ins do not wait
// for their commit; check-ins carrying events are answered only once their
// events are committed.
//
// The writer is built as cheaply as modernc.org/sqlite allows: handlers
// append to a queue under a mutex and wake the writer; the writer takes the
// whole queue as one batch (whatever arrived while the previous batch was
// committing: group commit without a timer) and runs one prepared
// single-row upsert per record, one prepared insert per event, in one
// transaction. One-row prepared statements are the fastest way to write
// rows with this driver: it binds parameters in time quadratic in their
// number, so multi-row statements cost more (measured: 1,000 upserts in
// 23 ms one row at a time, 53 ms twelve rows per statement, 283 ms 500 per
// statement).
type limitServer struct {
	keys   map[[32]byte]string // SHA-256 of an enrollment key → customer
	ring   *sign.KeyRing
	latest release.Version
	ttl    time.Duration
	db     *sql.DB
	upsert *sql.Stmt
	event  *sql.Stmt
	hs     *http.Server
	url    string

	mu      sync.Mutex
	pending []limitRecord
	closed  bool
	kick    chan struct{}
	done    chan struct{}
}

// limitRecord is one check-in for the writer; done, if set, receives the
// outcome of the commit holding the record.
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
// file in dir, accepting keys (enrollment keys → customer); serve wraps its
// HTTP server's and writer's goroutines (for profile labels).
func startLimitServer(dir string, keys map[string]string, latest string, serve func(func())) (*limitServer, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "cache_size(-262144)") // as ringfence's writing connection
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "limit.db")+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &limitServer{keys: map[[32]byte]string{}, ttl: release.DefaultAnswerTTL, db: db,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	if err := s.init(latest); err != nil {
		db.Close()
		return nil, err
	}
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
	serve(func() {
		go s.hs.Serve(ln)
		go s.write()
	})
	return s, nil
}

// init creates the schema, prepares the writer's statements and the signing
// key.
func (s *limitServer) init(latest string) error {
	if _, err := s.db.Exec(`CREATE TABLE installations (customer TEXT NOT NULL, instance_id TEXT NOT NULL,
		version TEXT NOT NULL, health TEXT NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
		PRIMARY KEY (customer, instance_id));
		CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, customer TEXT NOT NULL, instance_id TEXT NOT NULL,
		kind TEXT NOT NULL, from_version TEXT NOT NULL, to_version TEXT NOT NULL, at TIMESTAMP NOT NULL, detail TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("limit server schema: %w", err)
	}
	var err error
	if s.upsert, err = s.db.Prepare(`INSERT INTO installations (customer, instance_id, version, health, first_seen, last_seen)
		VALUES (?1, ?2, ?3, ?4, ?5, ?5)
		ON CONFLICT (customer, instance_id) DO UPDATE SET version = excluded.version, health = excluded.health, last_seen = excluded.last_seen`); err != nil {
		return fmt.Errorf("prepare upsert: %w", err)
	}
	if s.event, err = s.db.Prepare(`INSERT INTO events (customer, instance_id, kind, from_version, to_version, at, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`); err != nil {
		return fmt.Errorf("prepare event insert: %w", err)
	}
	key, err := sign.GenerateKey(rand.Reader, time.Now())
	if err != nil {
		return err
	}
	if s.ring, err = sign.NewKeyRing(key); err != nil {
		return err
	}
	s.latest, err = release.ParseVersion(latest)
	return err
}

// close stops serving, drains the writer and closes the database.
func (s *limitServer) close() {
	s.hs.Close()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wake()
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.pending = append(s.pending, rec)
	s.mu.Unlock()
	s.wake()
	if rec.done != nil {
		if err := <-rec.done; err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(env)
}

// seed writes one routine check-in of every installation, as the warm-up's
// check-ins would (installation i belongs to the customer of key i mod
// customers).
func (s *limitServer) seed(ids []string, customers int) error {
	batch := make([]limitRecord, 0, 5000)
	for i, id := range ids {
		batch = append(batch, limitRecord{customer: fmt.Sprintf("customer-%04d", i%customers), instanceID: id,
			version: "1.0.0", health: "ok", at: time.Now().UTC()})
		if len(batch) == cap(batch) || i == len(ids)-1 {
			if err := s.commit(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// stored counts the installations and events in the minimal server's store.
func (s *limitServer) stored() (installations, events int, err error) {
	err = s.db.QueryRow(`SELECT (SELECT COUNT(*) FROM installations), (SELECT COUNT(*) FROM events)`).Scan(&installations, &events)
	return installations, events, err
}

// wake tells the writer there is work; it never blocks.
func (s *limitServer) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// write commits what is queued whenever woken, until closed: each batch is
// everything that arrived while the previous one was being committed.
func (s *limitServer) write() {
	defer close(s.done)
	// spare is the previous batch's array, reused for the queue; it never
	// is the queue's own array (swapped only when the queue held records).
	var spare []limitRecord
	for range s.kick {
		s.mu.Lock()
		batch, closed := s.pending, s.closed
		if len(batch) > 0 {
			s.pending = spare[:0]
		}
		s.mu.Unlock()
		if len(batch) > 0 {
			err := s.commit(batch)
			for _, r := range batch {
				if r.done != nil {
					r.done <- err
				}
			}
			clear(batch)
			spare = batch
		}
		if closed {
			return
		}
	}
}

// commit writes batch in one transaction, in arrival order.
func (s *limitServer) commit(batch []limitRecord) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	upsert, event := tx.StmtContext(ctx, s.upsert), tx.StmtContext(ctx, s.event)
	for _, r := range batch {
		if _, err := upsert.ExecContext(ctx, r.customer, r.instanceID, r.version, r.health, r.at); err != nil {
			return fmt.Errorf("upsert installation: %w", err)
		}
		for _, e := range r.events {
			if _, err := event.ExecContext(ctx, r.customer, r.instanceID, e.Kind, e.From, e.To, e.At, e.Detail); err != nil {
				return fmt.Errorf("insert event: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
