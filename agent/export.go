package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringfence/ringfence/internal/atomicfile"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// exportKey loads the installation's export signing key from the state
// directory; ok is false when there is none yet.
func (s *StateDir) exportKey() (sign.Key, bool, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, exportKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return sign.Key{}, false, nil
	}
	if err != nil {
		return sign.Key{}, false, fmt.Errorf("read export key: %w", err)
	}
	var k sign.Key
	if err := json.Unmarshal(data, &k); err != nil {
		return sign.Key{}, false, fmt.Errorf("export key %s: %w", filepath.Join(s.dir, exportKeyFile), err)
	}
	return k, true, nil
}

// ensureExportKey creates the installation's ed25519 export key in the
// state directory (0600, atomically) when it has none: at the first
// offline start, which is an air-gapped installation's enrollment. The
// private half never leaves the state directory.
func (a *Agent) ensureExportKey() error {
	if _, ok, err := a.state.exportKey(); err != nil || ok {
		return err
	}
	k, err := sign.GenerateKey(rand.Reader, a.cfg.Now())
	if err != nil {
		return err
	}
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(a.state.dir, exportKeyFile), data, 0o600); err != nil {
		return fmt.Errorf("save export key: %w", err)
	}
	a.log.Info("created this installation's export signing key", "keyid", k.ID)
	return nil
}

// Export makes a signed export of the installation's offline reports not
// yet acknowledged (after an offline check-in now, so the latest version,
// health and events are in it), oldest first, as many as fit in
// release.MaxExportBytes. It is signed with the installation's export key,
// whose public half it carries with its binding to the enrollment key. It
// returns the envelope and how many reports it holds and are left out. The
// reports stay in the state until a bundle acknowledges them, so a lost
// file costs nothing: export again.
func (a *Agent) Export(ctx context.Context) (sign.Envelope, release.Export, int, error) {
	unlock, err := a.state.Lock(ctx)
	if err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	defer unlock()
	st, err := a.state.Load()
	if err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	if err := a.ensureExportKey(); err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	k, _, err := a.state.exportKey()
	if err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	now := a.cfg.Now().UTC()
	if _, err := a.observe(ctx, st, now); err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	if err := a.state.Save(st); err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	ring, err := sign.NewKeyRing(k)
	if err != nil {
		return sign.Envelope{}, release.Export{}, 0, err
	}
	pub := []byte(k.Private.Public().(ed25519.PublicKey))
	exp := release.Export{Kind: release.ExportKind, Product: a.cfg.Product, InstanceID: st.InstanceID,
		IssuedAt: now, ExpiresAt: now.Add(release.ExportValidity), PublicKey: pub,
		Binding: release.ExportBinding(a.keyHash(), a.cfg.Product, st.InstanceID, pub), Reports: []release.Report{}}
	reports := st.Offline.Reports
	n := min(len(reports), release.MaxExportReports)
	for ; n >= 0; n-- {
		exp.Reports = exp.Reports[:0]
		for _, r := range reports[:n] {
			exp.Reports = append(exp.Reports, r.Report)
		}
		env, err := ring.SignJSON(exp)
		if err != nil {
			return sign.Envelope{}, release.Export{}, 0, err
		}
		if len(env.Payload) <= release.MaxExportBytes {
			if err := exp.Validate(); err != nil {
				return sign.Envelope{}, release.Export{}, 0, fmt.Errorf("export: %s", release.ErrorMessage(err))
			}
			a.log.Info("exported offline reports", "reports", n, "left_for_the_next_export", len(reports)-n, "keyid", k.ID)
			return env, exp, len(reports) - n, nil
		}
	}
	return sign.Envelope{}, release.Export{}, 0, errors.New("export: not even one report fits in an export")
}

// BundleMetrics are the air-gapped agent's metrics, on a registry the
// caller owns. A nil *BundleMetrics records nothing.
type BundleMetrics struct {
	expiry      prometheus.Gauge
	expiresSoon prometheus.Gauge
	valid       prometheus.Gauge
	sequence    prometheus.Gauge
	unacked     prometheus.Gauge
	undelivered prometheus.Gauge
}

// NewBundleMetrics creates the air-gapped metrics and registers them on reg.
func NewBundleMetrics(reg prometheus.Registerer) *BundleMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &BundleMetrics{
		expiry:      g("ringfence_agent_bundle_expiry_timestamp_seconds", "Unix time the accepted offline bundle expires (0: none)."),
		expiresSoon: g("ringfence_agent_bundle_expires_soon", "1 when the accepted offline bundle expires within a week or has expired: carry in a new one."),
		valid:       g("ringfence_agent_bundle_valid", "1 while the accepted offline bundle verifies and has not expired (0: no upgrade)."),
		sequence:    g("ringfence_agent_bundle_sequence", "Sequence number of the accepted offline bundle."),
		unacked:     g("ringfence_agent_unacknowledged_reports", "Offline reports no bundle has acknowledged yet (export them)."),
		undelivered: g("ringfence_agent_offline_undelivered_events", "Events in the outbox not yet acknowledged."),
	}
	reg.MustRegister(m.expiry, m.expiresSoon, m.valid, m.sequence, m.unacked, m.undelivered)
	return m
}

// observe records the air-gapped status.
func (m *BundleMetrics) observe(bs *BundleStatus, undelivered int) {
	if m == nil {
		return
	}
	m.undelivered.Set(float64(undelivered))
	if bs == nil {
		m.expiry.Set(0)
		m.valid.Set(0)
		m.expiresSoon.Set(1)
		return
	}
	m.sequence.Set(float64(bs.Sequence))
	m.unacked.Set(float64(bs.UnacknowledgedReports))
	m.expiry.Set(0)
	if !bs.ExpiresAt.IsZero() {
		m.expiry.Set(float64(bs.ExpiresAt.Unix()))
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.valid.Set(b2f(bs.Verified && !bs.Expired && !bs.ClockBehind))
	m.expiresSoon.Set(b2f(bs.ExpiresSoon || bs.Expired || !bs.Verified))
}
