package release

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ringfence/ringfence/internal/fault"
)

// Air-gapped installations get the answers of check-ins as a signed Bundle
// carried in, and send what they would have reported as a signed Export
// carried out.
//
// Invariants:
//   - A bundle holds the facts Decide reads for one customer — its ring, and
//     every release of the product with its status, guidance, required stop
//     and the time it became available in that ring — and DecideBundle runs
//     Decide on exactly those facts. For every installation of the customer,
//     every version and every time t in the bundle's validity,
//     DecideBundle(NewBundle(s, ...), inst, t) equals Decide(s, inst, t)
//     except for the nonce (offline there is none) and expires_at (the
//     bundle's); bundle_test.go proves it state by state.
//   - A bundle decides nothing once expired: expired means "no upgrade".
//   - An export's reports are check-ins in all but transport: each passes
//     CheckIn.Validate, and the server records them as check-ins.

// Document kinds.
const (
	// BundleKind is the kind of a bundle payload.
	BundleKind = "ringfence-bundle/1"
	// ExportKind is the kind of an export payload.
	ExportKind = "ringfence-export/1"
)

// Limits of bundles and exports.
const (
	// DefaultBundleValidity is how long a bundle is valid unless told.
	DefaultBundleValidity = 30 * 24 * time.Hour
	// MaxBundleValidity bounds a bundle's validity: a pull must reach
	// air-gapped sites within this time at the latest.
	MaxBundleValidity = 366 * 24 * time.Hour
	// ExportValidity is how long an export stays importable: its reports
	// are facts and do not go stale the way an answer does; the bound only
	// keeps sign.Verify's expiry meaningful.
	ExportValidity = 366 * 24 * time.Hour
	// MaxExportReports bounds the reports in one export.
	MaxExportReports = 1000
	// MaxExportBytes is the size limit of an export payload (the signed file
	// is a third larger, and within the admin API's 1 MiB request limit).
	MaxExportBytes = 512 << 10
	// keyCheckLen is the length of a key check in hex digits (128 bits).
	keyCheckLen = 32
)

// Bundle is the signed payload carried into an air-gapped site: everything
// Decide needs to answer any installation of one customer, offline.
type Bundle struct {
	Kind     string `json:"kind"`
	Product  string `json:"product"`
	Customer string `json:"customer"`
	// Sequence grows with every bundle of the customer: an agent refuses a
	// bundle with a lower sequence than one it accepted, so replaying an
	// old bundle cannot undo a pull.
	Sequence  int64     `json:"sequence"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Ring is the customer's ring; nil when the product has no rings (then
	// nothing is offered except pull guidance).
	Ring *BundleRing `json:"ring"`
	// Releases are every release of the product, lowest version first.
	Releases []BundleRelease `json:"releases"`
	// KeyChecks hold one BundleKeyCheck per active enrollment key of the
	// customer, so an agent can tell a bundle for its own customer from
	// another customer's without being told its customer's name.
	KeyChecks []string `json:"key_checks"`
	// Acknowledged says, per installation, up to which report sequence its
	// exports have been imported: the agent drops those reports.
	Acknowledged []ExportAck `json:"acknowledged"`
	// SigningKeys, during a key rotation's overlap, name the keys that sign
	// the bundle; absent otherwise (see SigningKey).
	SigningKeys []SigningKey `json:"signing_keys,omitempty"`
}

// BundleRing is the customer's ring as a bundle carries it.
type BundleRing struct {
	Name string `json:"name"`
	// RolloutPercent is the ring's rollout percent written as the shortest
	// decimal that reads back to the same float64 (canonical JSON carries
	// no fractional numbers).
	RolloutPercent string `json:"rollout_percent"`
}

// BundleRelease is one release as a bundle carries it.
type BundleRelease struct {
	Version      Version `json:"version"`
	Status       Status  `json:"status"`
	NotesURL     string  `json:"notes_url,omitempty"`
	RequiredStop bool    `json:"required_stop"`
	// AvailableSince is when the release became (or becomes) available in
	// the customer's ring; absent when it is not available there.
	AvailableSince *time.Time `json:"available_since,omitempty"`
	// Paused and Pulled carry the reason and guidance, not who did it.
	Paused *BundlePause `json:"paused,omitempty"`
	Pulled *BundlePull  `json:"pulled,omitempty"`
	// Waives are the preflight findings the release waives (Waivers). A
	// code an agent does not know waives nothing there (it matches none of
	// its findings): a later waivable finding does not make bundles refused.
	Waives []string `json:"waives,omitempty"`
	// RequiresPostgres is the release's lowest PostgreSQL major version.
	RequiresPostgres int `json:"requires_postgres,omitempty"`
}

// BundlePause is a pause as a bundle carries it.
type BundlePause struct {
	Reason      string `json:"reason"`
	IncidentURL string `json:"incident_url,omitempty"`
}

// BundlePull is a pull and its guidance as a bundle carries it.
type BundlePull struct {
	Reason      string  `json:"reason"`
	IncidentURL string  `json:"incident_url,omitempty"`
	Action      Action  `json:"action"`
	Target      Version `json:"target,omitzero"`
}

// ExportAck acknowledges an installation's exported reports up to Through.
type ExportAck struct {
	InstanceID string `json:"instance_id"`
	Through    int64  `json:"through"`
}

// NewBundle builds the bundle of customer of product from s, issued at
// issued and valid until expires, with sequence seq. The customer must be
// one s knows. Key checks and acknowledgements are the caller's to add.
func NewBundle(s *Snapshot, product, customer string, seq int64, issued, expires time.Time) (Bundle, error) {
	p := s.products[product]
	if p == nil {
		return Bundle{}, Errorf(ENOTFOUND, "product %s not found", product)
	}
	ringIdx, ok := p.customerRing[customer]
	if !ok {
		return Bundle{}, Errorf(ENOTFOUND, "customer %s of %s not found", customer, product)
	}
	if seq < 1 {
		return Bundle{}, Errorf(EINVALID, "bundle sequence %d: must be positive", seq)
	}
	if d := expires.Sub(issued); d <= 0 || d > MaxBundleValidity {
		return Bundle{}, Errorf(EINVALID, "bundle validity %s: must be positive and at most %s", d, MaxBundleValidity)
	}
	b := Bundle{Kind: BundleKind, Product: product, Customer: customer, Sequence: seq,
		IssuedAt: issued.UTC(), ExpiresAt: expires.UTC(), Releases: []BundleRelease{},
		KeyChecks: []string{}, Acknowledged: []ExportAck{}}
	if len(p.rings) > 0 {
		r := p.rings[ringIdx]
		b.Ring = &BundleRing{Name: r.Name, RolloutPercent: strconv.FormatFloat(r.RolloutPercent, 'g', -1, 64)}
	}
	for _, e := range p.releases {
		r := e.rel
		br := BundleRelease{Version: r.Version, Status: r.Status, NotesURL: r.NotesURL, RequiredStop: r.RequiredStop, Waives: r.Waives,
			RequiresPostgres: r.RequiresPostgres}
		if len(p.rings) > 0 && e.since[ringIdx] != math.MaxInt64 {
			t := time.Unix(0, e.since[ringIdx]).UTC()
			br.AvailableSince = &t
		}
		if r.Paused != nil {
			br.Paused = &BundlePause{Reason: r.Paused.Reason, IncidentURL: r.Paused.IncidentURL}
		}
		if r.Pulled != nil {
			br.Pulled = &BundlePull{Reason: r.Pulled.Reason, IncidentURL: r.Pulled.IncidentURL, Action: r.Pulled.Action, Target: r.Pulled.Target}
		}
		b.Releases = append(b.Releases, br)
	}
	return b, nil
}

// DecodeBundle parses and validates a bundle payload (already verified by
// its signature). Unknown fields are refused.
func DecodeBundle(payload []byte) (Bundle, error) {
	var b Bundle
	if err := decodeStrict(payload, &b); err != nil {
		return Bundle{}, Errorf(EINVALID, "bundle: %s", err)
	}
	if err := b.Validate(); err != nil {
		return Bundle{}, err
	}
	return b, nil
}

// Validate checks a bundle's structure: kind, names, sequence, times,
// releases in strictly ascending order with valid statuses and guidance.
func (b Bundle) Validate() error {
	if b.Kind != BundleKind {
		return Errorf(EINVALID, "bundle kind %q: want %s", b.Kind, BundleKind)
	}
	if err := ValidateName("product", b.Product); err != nil {
		return err
	}
	if err := ValidateName("customer", b.Customer); err != nil {
		return err
	}
	if b.Sequence < 1 {
		return Errorf(EINVALID, "bundle sequence %d: must be positive", b.Sequence)
	}
	if b.IssuedAt.IsZero() || !b.IssuedAt.Before(b.ExpiresAt) {
		return Errorf(EINVALID, "bundle validity: issued_at must come before expires_at")
	}
	if b.Ring != nil {
		if err := ValidateName("ring", b.Ring.Name); err != nil {
			return err
		}
		p, err := strconv.ParseFloat(b.Ring.RolloutPercent, 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
			return Errorf(EINVALID, "bundle ring rollout_percent %q: want a number in [0, 100]", b.Ring.RolloutPercent)
		}
	}
	for i, r := range b.Releases {
		if r.Version.IsZero() {
			return Errorf(EINVALID, "bundle release %d: no version", i)
		}
		if i > 0 && !b.Releases[i-1].Version.Less(r.Version) {
			return Errorf(EINVALID, "bundle releases not in ascending version order at %s", r.Version)
		}
		if !r.Status.Valid() {
			return Errorf(EINVALID, "bundle release %s: status %q", r.Version, r.Status)
		}

		if r.Pulled != nil && r.Pulled.Action != ActionUpgrade && r.Pulled.Action != ActionRollback && r.Pulled.Action != ActionHold {
			return Errorf(EINVALID, "bundle release %s: pull action %q", r.Version, r.Pulled.Action)
		}
	}
	for _, a := range b.Acknowledged {
		if err := validateInstanceID(a.InstanceID); err != nil {
			return err
		}
	}
	return nil
}

// snapshot turns the bundle's facts back into a Snapshot of one product
// with one ring, the customer's.
func (b Bundle) snapshot() (*Snapshot, error) {
	p := &productIndex{product: Product{Name: b.Product}, customerRing: map[string]int{}}
	if b.Ring != nil {
		pct, err := strconv.ParseFloat(b.Ring.RolloutPercent, 64)
		if err != nil {
			return nil, Errorf(EINVALID, "bundle ring rollout_percent %q: %v", b.Ring.RolloutPercent, err)
		}
		p.rings = []Ring{{Product: b.Product, Name: b.Ring.Name, RolloutPercent: pct}}
		p.customerRing[b.Customer] = 0
	}
	for _, br := range b.Releases {
		r := Release{Product: b.Product, Version: br.Version, Status: br.Status, NotesURL: br.NotesURL, RequiredStop: br.RequiredStop, Waives: br.Waives,
			RequiresPostgres: br.RequiresPostgres}
		if br.Paused != nil {
			r.Paused = &Pause{Reason: br.Paused.Reason, IncidentURL: br.Paused.IncidentURL}
		}
		if br.Pulled != nil {
			r.Pulled = &Pull{Reason: br.Pulled.Reason, IncidentURL: br.Pulled.IncidentURL, Action: br.Pulled.Action, Target: br.Pulled.Target}
		}
		e := releaseEntry{rel: r, since: []int64{math.MaxInt64}}
		if br.AvailableSince != nil {
			e.since[0] = br.AvailableSince.UnixNano()
		}
		p.releases = append(p.releases, e)
	}
	sort.Slice(p.releases, func(i, j int) bool { return p.releases[i].rel.Version.Less(p.releases[j].rel.Version) })
	return &Snapshot{builtAt: b.IssuedAt, answerTTL: b.ExpiresAt.Sub(b.IssuedAt),
		products: map[string]*productIndex{b.Product: p}}, nil
}

// DecideBundle answers an installation of the bundle's customer at now from
// the bundle alone, as Decide would have answered it online: the answer
// carries no nonce and expires with the bundle. A bundle not yet valid or
// expired at now, or for another product, decides nothing (an error).
func DecideBundle(b Bundle, inst Installation, now time.Time) (Answer, error) {
	if inst.Product != b.Product {
		return Answer{}, Errorf(EFORBIDDEN, "bundle is for product %s, not %s", b.Product, inst.Product)
	}
	if !now.Before(b.ExpiresAt) {
		return Answer{}, Errorf(EINVALID, "bundle %d expired at %s: no upgrade", b.Sequence, b.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if now.Before(b.IssuedAt) {
		return Answer{}, Errorf(EINVALID, "bundle %d is issued at %s, after now (%s): check the clock", b.Sequence,
			b.IssuedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	s, err := b.snapshot()
	if err != nil {
		return Answer{}, err
	}
	inst.Customer = b.Customer
	ans, err := Decide(s, inst, "", now)
	if err != nil {
		return Answer{}, err
	}
	ans.ExpiresAt = b.ExpiresAt
	return ans, nil
}

// Acked returns up to which report sequence the bundle acknowledges the
// exports of instanceID (0: none).
func (b Bundle) Acked(instanceID string) int64 {
	for _, a := range b.Acknowledged {
		if a.InstanceID == instanceID {
			return a.Through
		}
	}
	return 0
}

// BundleKeyCheck is the key check of an enrollment key for a bundle of
// customer of product: HMAC-SHA256 keyed with the SHA-256 of the enrollment
// key (what the server stores and what the agent can compute), over
// "ringfence bundle customer v1\n" product "\n" customer, first 16 bytes in
// hex. It reveals nothing of the key and cannot be made without the key or
// its stored hash.
func BundleKeyCheck(keyHash [32]byte, product, customer string) string {
	m := hmac.New(sha256.New, keyHash[:])
	io.WriteString(m, "ringfence bundle customer v1\n"+product+"\n"+customer)
	return hex.EncodeToString(m.Sum(nil))[:keyCheckLen]
}

// ForKey reports whether the bundle names the enrollment key with hash
// keyHash among its customer's keys.
func (b Bundle) ForKey(keyHash [32]byte) bool {
	want := []byte(BundleKeyCheck(keyHash, b.Product, b.Customer))
	for _, c := range b.KeyChecks {
		if hmac.Equal([]byte(c), want) {
			return true
		}
	}
	return false
}

// Export is the signed payload carried out of an air-gapped site: the
// check-ins the installation would have sent, signed with the
// installation's own ed25519 key, whose public half is bound to the
// customer's enrollment key by Binding.
type Export struct {
	Kind       string    `json:"kind"`
	Product    string    `json:"product"`
	InstanceID string    `json:"instance_id"`
	IssuedAt   time.Time `json:"issued_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// PublicKey is the installation's 32-byte ed25519 key (base64).
	PublicKey []byte `json:"public_key"`
	// Binding is ExportBinding of the enrollment key for PublicKey (base64).
	Binding []byte `json:"binding"`
	// Reports are the offline check-ins not yet acknowledged, oldest first,
	// with strictly increasing sequence numbers.
	Reports []Report `json:"reports"`
}

// Report is one offline check-in: what the installation would have sent at
// At. Seq numbers an installation's reports from 1 on, so a server imports
// each at most once whatever files carry it.
type Report struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Version Version   `json:"version"`
	Health  *Health   `json:"health,omitempty"`
	Events  []Event   `json:"events,omitempty"`
}

// exportNonce stands in for the nonce in CheckIn.Validate: exports answer no
// request, so they have none.
const exportNonce = "offline-export-no-nonce"

// ExportBinding binds an installation's public key to an enrollment key:
// HMAC-SHA256 keyed with the SHA-256 of the enrollment key, over
// "ringfence export key binding v1\n" product "\n" instanceID "\n" and the
// key in hex. The server verifies it with the hash it stores.
func ExportBinding(keyHash [32]byte, product, instanceID string, pub []byte) []byte {
	m := hmac.New(sha256.New, keyHash[:])
	io.WriteString(m, "ringfence export key binding v1\n"+product+"\n"+instanceID+"\n"+hex.EncodeToString(pub))
	return m.Sum(nil)
}

// BoundTo reports whether the export's key binding was made with the
// enrollment key of hash keyHash.
func (e Export) BoundTo(keyHash [32]byte) bool {
	return hmac.Equal(e.Binding, ExportBinding(keyHash, e.Product, e.InstanceID, e.PublicKey))
}

// DecodeExport parses and validates an export payload. The signature is not
// checked here (the key to check it with is inside); see Export.Validate.
func DecodeExport(payload []byte) (Export, error) {
	var e Export
	if len(payload) > MaxExportBytes {
		return Export{}, Errorf(EINVALID, "export larger than %d bytes", MaxExportBytes)
	}
	if err := decodeStrict(payload, &e); err != nil {
		return Export{}, Errorf(EINVALID, "export: %s", err)
	}
	if err := e.Validate(); err != nil {
		return Export{}, err
	}
	return e, nil
}

// Validate checks an export: kind, product, instance id, key and binding
// sizes, and every report under the rules of a check-in.
func (e Export) Validate() error {
	if e.Kind != ExportKind {
		return Errorf(EINVALID, "export kind %q: want %s", e.Kind, ExportKind)
	}
	if err := ValidateName("product", e.Product); err != nil {
		return err
	}
	if err := validateInstanceID(e.InstanceID); err != nil {
		return err
	}
	if len(e.PublicKey) != 32 {
		return Errorf(EINVALID, "export public_key: %d bytes, want 32", len(e.PublicKey))
	}
	if len(e.Binding) != sha256.Size {
		return Errorf(EINVALID, "export binding: %d bytes, want %d", len(e.Binding), sha256.Size)
	}
	if len(e.Reports) > MaxExportReports {
		return Errorf(EINVALID, "export holds %d reports: at most %d", len(e.Reports), MaxExportReports)
	}
	for i, r := range e.Reports {
		if r.Seq < 1 || (i > 0 && r.Seq <= e.Reports[i-1].Seq) {
			return Errorf(EINVALID, "export report %d: sequence %d not positive and increasing", i, r.Seq)
		}
		if r.At.IsZero() {
			return Errorf(EINVALID, "export report %d: no time", r.Seq)
		}
		if err := r.CheckIn(e).Validate(); err != nil {
			return Errorf(EINVALID, "export report %d: %s", r.Seq, ErrorMessage(err))
		}
	}
	return nil
}

// ImportResult says what importing an export recorded.
type ImportResult struct {
	// ID names the export file: the SHA-256 of its signed payload, in hex.
	ID         string `json:"id"`
	Customer   string `json:"customer"`
	InstanceID string `json:"instance_id"`
	// Duplicate is true when this very file was imported before: nothing
	// was recorded.
	Duplicate bool `json:"duplicate"`
	// Reports is how many reports the file holds; Recorded how many of
	// them were new (above the installation's imported high-water mark).
	Reports  int `json:"reports"`
	Recorded int `json:"recorded"`
	Events   int `json:"events"`
	// Through is the installation's high-water mark after the import: the
	// next bundle acknowledges its reports up to here.
	Through int64 `json:"reported_through"`
	// Failing are the versions the recorded reports name failures of.
	Failing []Version `json:"failing_versions"`
}

// CheckIn is the check-in r stands for.
func (r Report) CheckIn(e Export) CheckIn {
	return CheckIn{InstanceID: e.InstanceID, Product: e.Product, Version: r.Version, Nonce: exportNonce, Health: r.Health, Events: r.Events}
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fault.Const(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.Const("unexpected data after the JSON object")
	}
	return nil
}

// ParseValidity parses a bundle validity: a Go duration ("720h") or a whole
// number of days ("30d"), positive and at most MaxBundleValidity.
func ParseValidity(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, Errorf(EINVALID, "validity %q: want a duration such as 720h or a number of days such as 30d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, Errorf(EINVALID, "validity %q: want a duration such as 720h or a number of days such as 30d", s)
		}
	}
	if d <= 0 || d > MaxBundleValidity {
		return 0, Errorf(EINVALID, "validity %s: must be positive and at most %d days", s, MaxBundleValidity/(24*time.Hour))
	}
	return d, nil
}
