package client

import (
	"context"
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// WhoAmI returns the identity of the client's token.
func (c *Client) WhoAmI(ctx context.Context) (Identity, error) {
	var id Identity
	return id, c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, &id)
}

// Products lists every product.
func (c *Client) Products(ctx context.Context) ([]release.Product, error) {
	var ps []release.Product
	return ps, c.do(ctx, http.MethodGet, "/api/v1/products", nil, nil, &ps)
}

// Product returns one product.
func (c *Client) Product(ctx context.Context, name string) (release.Product, error) {
	var p release.Product
	return p, c.do(ctx, http.MethodGet, "/api/v1/products/"+esc(name), nil, nil, &p)
}

// CreateProduct creates a product (admin).
func (c *Client) CreateProduct(ctx context.Context, p NewProduct) (release.Product, error) {
	var out release.Product
	return out, c.do(ctx, http.MethodPost, "/api/v1/products", nil, p, &out)
}

// UpdateProduct changes a product's required gates or auto-halt policy
// (admin).
func (c *Client) UpdateProduct(ctx context.Context, name string, patch ProductPatch) (release.Product, error) {
	var out release.Product
	return out, c.do(ctx, http.MethodPatch, "/api/v1/products/"+esc(name), nil, patch, &out)
}

// ProductTagged returns one product and its ETag, for UpdateProductIfMatch.
func (c *Client) ProductTagged(ctx context.Context, name string) (release.Product, string, error) {
	var p release.Product
	h, err := c.doHeader(ctx, http.MethodGet, "/api/v1/products/"+esc(name), nil, nil, &p, nil)
	if err != nil {
		return p, "", err
	}
	return p, h.Get("ETag"), nil
}

// UpdateProductIfMatch is UpdateProduct that applies only if the product
// still has the ETag etag (from ProductTagged); otherwise it fails with
// code problem.PreconditionFailed (412) and changes nothing.
func (c *Client) UpdateProductIfMatch(ctx context.Context, name string, patch ProductPatch, etag string) (release.Product, error) {
	var out release.Product
	_, err := c.doHeader(ctx, http.MethodPatch, "/api/v1/products/"+esc(name), nil, patch, &out, http.Header{"If-Match": {etag}})
	return out, err
}

func productPath(product string) string { return "/api/v1/products/" + esc(product) }

func releasePath(product string, v release.Version) string {
	return productPath(product) + "/releases/" + esc(v.String())
}

// Rings lists a product's rings in rollout order.
func (c *Client) Rings(ctx context.Context, product string) ([]release.Ring, error) {
	var rs []release.Ring
	return rs, c.do(ctx, http.MethodGet, productPath(product)+"/rings", nil, nil, &rs)
}

// Ring returns one ring of product.
func (c *Client) Ring(ctx context.Context, product, name string) (release.Ring, error) {
	var r release.Ring
	return r, c.do(ctx, http.MethodGet, productPath(product)+"/rings/"+esc(name), nil, nil, &r)
}

// CreateRing adds a ring to product (admin).
func (c *Client) CreateRing(ctx context.Context, product string, r release.Ring) (release.Ring, error) {
	var out release.Ring
	return out, c.do(ctx, http.MethodPost, productPath(product)+"/rings", nil, r, &out)
}

// UpdateRing changes a ring of product (admin).
func (c *Client) UpdateRing(ctx context.Context, product, ring string, patch RingPatch) (release.Ring, error) {
	var out release.Ring
	return out, c.do(ctx, http.MethodPatch, productPath(product)+"/rings/"+esc(ring), nil, patch, &out)
}

// Customers lists a product's customers.
func (c *Client) Customers(ctx context.Context, product string) ([]release.Customer, error) {
	var cs []release.Customer
	return cs, c.do(ctx, http.MethodGet, productPath(product)+"/customers", nil, nil, &cs)
}

// Customer returns one customer of product.
func (c *Client) Customer(ctx context.Context, product, name string) (release.Customer, error) {
	var out release.Customer
	return out, c.do(ctx, http.MethodGet, customerPath(product, name), nil, nil, &out)
}

// CreateCustomer adds a customer of product in ring (admin).
func (c *Client) CreateCustomer(ctx context.Context, product, name, ring string) (release.Customer, error) {
	var out release.Customer
	return out, c.do(ctx, http.MethodPost, productPath(product)+"/customers", nil, api.NewCustomer{Name: name, Ring: ring}, &out)
}

// MoveCustomer puts a customer in another ring (admin).
func (c *Client) MoveCustomer(ctx context.Context, product, name, ring string) (release.Customer, error) {
	var out release.Customer
	return out, c.do(ctx, http.MethodPatch, productPath(product)+"/customers/"+esc(name), nil, api.CustomerPatch{Ring: ring}, &out)
}

func customerPath(product, customer string) string {
	return productPath(product) + "/customers/" + esc(customer)
}

// EnrollmentKeys lists a customer's enrollment keys, without secrets (admin).
func (c *Client) EnrollmentKeys(ctx context.Context, product, customer string) ([]EnrollmentKey, error) {
	var ks []EnrollmentKey
	return ks, c.do(ctx, http.MethodGet, customerPath(product, customer)+"/keys", nil, nil, &ks)
}

// CreateEnrollmentKey issues a new enrollment key; its secret is in Key and
// is shown only this once (admin).
func (c *Client) CreateEnrollmentKey(ctx context.Context, product, customer string) (EnrollmentKey, error) {
	var k EnrollmentKey
	return k, c.do(ctx, http.MethodPost, customerPath(product, customer)+"/keys", nil, api.Empty{}, &k)
}

// RevokeEnrollmentKey revokes an enrollment key (admin).
func (c *Client) RevokeEnrollmentKey(ctx context.Context, product, customer, id string) error {
	return c.do(ctx, http.MethodDelete, customerPath(product, customer)+"/keys/"+esc(id), nil, nil, nil)
}

// Releases lists a product's releases, newest first.
func (c *Client) Releases(ctx context.Context, product string) ([]release.Release, error) {
	var rs []release.Release
	return rs, c.do(ctx, http.MethodGet, productPath(product)+"/releases", nil, nil, &rs)
}

// Release returns one release.
func (c *Client) Release(ctx context.Context, product string, v release.Version) (release.Release, error) {
	var r release.Release
	return r, c.do(ctx, http.MethodGet, releasePath(product, v), nil, nil, &r)
}

// CreateRelease creates a release of product (releaser).
func (c *Client) CreateRelease(ctx context.Context, product string, r NewRelease) (release.Release, error) {
	var out release.Release
	return out, c.do(ctx, http.MethodPost, productPath(product)+"/releases", nil, r, &out)
}

// PauseRelease stops all new offers of a release (releaser).
func (c *Client) PauseRelease(ctx context.Context, product string, v release.Version, reason, incidentURL string) (release.Release, error) {
	var out release.Release
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/pause", nil, api.Pause{Reason: reason, IncidentURL: incidentURL}, &out)
}

// ResumeRelease makes a paused release offerable again (releaser).
func (c *Client) ResumeRelease(ctx context.Context, product string, v release.Version, reason string) (release.Release, error) {
	var out release.Release
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/resume", nil, api.Resume{Reason: reason}, &out)
}

// PullRelease withdraws a release for good (releaser).
func (c *Client) PullRelease(ctx context.Context, product string, v release.Version, p PullRequest) (release.Release, error) {
	var out release.Release
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/pull", nil, p, &out)
}

// PromoteRelease forces a release into ring (and every ring before it),
// past gates, soak, evidence and holds (releaser; reason required).
func (c *Client) PromoteRelease(ctx context.Context, product string, v release.Version, ring, reason string) (release.Release, error) {
	var out release.Release
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/promote", nil, api.Promote{Ring: ring, Reason: reason}, &out)
}

// GateResults lists the gate results posted for a release.
func (c *Client) GateResults(ctx context.Context, product string, v release.Version) ([]release.GateResult, error) {
	var gs []release.GateResult
	return gs, c.do(ctx, http.MethodGet, releasePath(product, v)+"/gates", nil, nil, &gs)
}

// PostGateResult records a gate's outcome for a release (releaser; CI).
func (c *Client) PostGateResult(ctx context.Context, product string, v release.Version, gate string, outcome release.GateOutcome, resultURL string) (release.GateResult, error) {
	var out release.GateResult
	body := api.NewGateResult{Name: gate, Status: outcome, URL: resultURL}
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/gates", nil, body, &out)
}

// Holds lists a release's holds, open and resolved.
func (c *Client) Holds(ctx context.Context, product string, v release.Version) ([]release.Hold, error) {
	var hs []release.Hold
	return hs, c.do(ctx, http.MethodGet, releasePath(product, v)+"/holds", nil, nil, &hs)
}

// RaiseHold puts a hold on a release (any role).
func (c *Client) RaiseHold(ctx context.Context, product string, v release.Version, reason string) (release.Hold, error) {
	var out release.Hold
	return out, c.do(ctx, http.MethodPost, releasePath(product, v)+"/holds", nil, api.NewHold{Reason: reason}, &out)
}

// ResolveHold resolves a hold (releaser).
func (c *Client) ResolveHold(ctx context.Context, product, id, resolution string) (release.Hold, error) {
	var out release.Hold
	return out, c.do(ctx, http.MethodPost, productPath(product)+"/holds/"+esc(id)+"/resolve", nil, api.HoldResolution{Resolution: resolution}, &out)
}

// Status returns the standing of a product's releases per ring.
func (c *Client) Status(ctx context.Context, product string) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, productPath(product)+"/status", nil, nil, &s)
}

// Installations lists up to limit installations of product, most recently
// seen first (limit <= 0: the server's default).
func (c *Client) Installations(ctx context.Context, product string, limit int) ([]release.Installation, error) {
	return c.QueryInstallations(ctx, product, InstallationQuery{Limit: limit})
}

// QueryInstallations lists the installations of product that q selects,
// most recently seen first; the server filters before it counts the limit.
func (c *Client) QueryInstallations(ctx context.Context, product string, q InstallationQuery) ([]release.Installation, error) {
	var is []release.Installation
	return is, c.do(ctx, http.MethodGet, productPath(product)+"/installations", q.Values(), nil, &is)
}

// Tokens lists API tokens, without secrets (admin).
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var ts []Token
	return ts, c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &ts)
}

// CreateToken issues an API token; its secret is shown only this once
// (admin).
func (c *Client) CreateToken(ctx context.Context, name string, role release.Role) (Token, error) {
	var t Token
	return t, c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, api.NewToken{Name: name, Role: role}, &t)
}

// RevokeToken revokes an API token (admin).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+esc(id), nil, nil, nil)
}

// Audit lists audit entries newest first: up to limit (<= 0: the server's
// default) with ids below before (0: from the newest).
func (c *Client) Audit(ctx context.Context, before int64, limit int) ([]release.AuditEntry, error) {
	return c.QueryAudit(ctx, AuditQuery{Before: before, Limit: limit})
}

// QueryAudit lists the audit entries q selects, newest first; the server
// filters before it counts the limit.
func (c *Client) QueryAudit(ctx context.Context, q AuditQuery) ([]release.AuditEntry, error) {
	var es []release.AuditEntry
	return es, c.do(ctx, http.MethodGet, "/api/v1/audit", q.Values(), nil, &es)
}

// RotateKey adds a new signing key that signs every answer from now on; old
// keys stay published (admin).
func (c *Client) RotateKey(ctx context.Context) (sign.PublicKey, error) {
	var k sign.PublicKey
	return k, c.do(ctx, http.MethodPost, "/api/v1/keys/rotate", nil, api.Empty{}, &k)
}

// PublicKeys returns the server's published answer-verification keys
// (GET /v1/keys; no authentication). Pin them; do not trust them blindly on
// every start (see docs/protocol.md).
func (c *Client) PublicKeys(ctx context.Context) ([]sign.PublicKey, error) {
	var out api.PublicKeys
	if err := c.do(ctx, http.MethodGet, "/v1/keys", nil, nil, &out); err != nil {
		return nil, err
	}
	for _, k := range out.Keys {
		if err := k.Validate(); err != nil {
			return nil, err
		}
	}
	return out.Keys, nil
}

// InstallationHistory returns one installation's records, events and damage
// reports, newest first (viewer).
func (c *Client) InstallationHistory(ctx context.Context, product, instanceID string, limit int) (release.InstallationHistory, error) {
	var out release.InstallationHistory
	return out, c.do(ctx, http.MethodGet, productPath(product)+"/installations/"+esc(instanceID), listQuery(limit), nil, &out)
}
