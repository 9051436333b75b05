package server

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// createBundle issues a signed offline bundle for a customer: the facts
// Decide reads for it, from a snapshot rebuilt now, with the next sequence
// number of the customer, key checks of its active enrollment keys and
// acknowledgements of the exports imported from its installations.
func (s *Server) createBundle(r *http.Request, who release.Token, req api.NewBundle) (sign.Envelope, error) {
	ctx := r.Context()
	product, customer := r.PathValue("product"), r.PathValue("customer")
	valid := release.DefaultBundleValidity
	if req.Valid != "" {
		d, err := release.ParseValidity(req.Valid)
		if err != nil {
			return sign.Envelope{}, err
		}
		valid = d
	}
	// The facts as of now, not as of the last periodic rebuild: a pull made
	// through another server must be in the bundle.
	if err := s.refresh(ctx); err != nil {
		return sign.Envelope{}, err
	}
	st := s.state.Load()
	issued := st.snap.BuiltAt().UTC()
	// Checked before a sequence number is spent.
	if _, err := release.NewBundle(st.snap, product, customer, 1, issued, issued.Add(valid)); err != nil {
		return sign.Envelope{}, err
	}
	checks := []string{}
	for h, k := range st.keys {
		if k.Product == product && k.Customer == customer {
			checks = append(checks, release.BundleKeyCheck(h, product, customer))
		}
	}
	sort.Strings(checks)
	if len(checks) == 0 {
		return sign.Envelope{}, release.Errorf(release.ECONFLICT, "customer %s has no active enrollment key: create one (ringfence customer key create) and give it to the site's agent", customer)
	}
	seq, acks, err := s.store.NextBundle(ctx, who.Actor(), sqlstore.BundleRecord{Product: product, Customer: customer,
		IssuedAt: issued, ExpiresAt: issued.Add(valid)})
	if err != nil {
		return sign.Envelope{}, err
	}
	b, err := release.NewBundle(st.snap, product, customer, seq, issued, issued.Add(valid))
	if err != nil {
		return sign.Envelope{}, err
	}
	b.KeyChecks, b.Acknowledged, b.SigningKeys = checks, acks, st.signers
	return st.ring.SignJSON(b)
}

// importExport records a signed export carried out of an air-gapped site.
// Its key must be bound to an active enrollment key of its product (which
// names the customer) and, after the installation's first import, be the
// key it registered; its signature must verify with that key. Its reports
// are then recorded as check-ins and failures go to auto-halt, as on the
// check-in path.
func (s *Server) importExport(r *http.Request, who release.Token, env sign.Envelope) (release.ImportResult, error) {
	now := time.Now().UTC()
	exp, err := release.DecodeExport(env.Payload)
	if err != nil {
		return release.ImportResult{}, err
	}
	st := s.state.Load()
	var key *release.EnrollmentKey
	for h, k := range st.keys {
		if k.Product == exp.Product && exp.BoundTo(h) {
			key = &k
			break
		}
	}
	if key == nil {
		return release.ImportResult{}, release.Errorf(release.EFORBIDDEN,
			"export of %s: its key is not bound to any active enrollment key of %s (forged, or the key was revoked)", exp.InstanceID, exp.Product)
	}
	pub := sign.PublicKey{ID: sign.KeyID(ed25519.PublicKey(exp.PublicKey)), Key: ed25519.PublicKey(exp.PublicKey)}
	if _, err := sign.Verify(env, []sign.PublicKey{pub}, now); err != nil {
		return release.ImportResult{}, release.Errorf(release.EFORBIDDEN, "export of %s: %v", exp.InstanceID, err)
	}
	sum := sha256.Sum256(env.Payload)
	res, err := s.store.ImportExport(r.Context(), who.Actor(), sqlstore.ExportImport{ID: hex.EncodeToString(sum[:]),
		Product: exp.Product, Customer: key.Customer, InstanceID: exp.InstanceID, PublicKey: exp.PublicKey,
		Reports: exp.Reports, ReceivedAt: storeTime()})
	if err != nil {
		return res, err
	}
	for _, v := range res.Failing {
		s.halts.add(exp.Product, v)
	}
	return res, nil
}
