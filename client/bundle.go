package client

import (
	"context"
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/sign"
)

// CreateBundle issues a signed offline bundle for customer of product,
// valid for valid ("30d", "720h"; empty: the server's default) (releaser).
func (c *Client) CreateBundle(ctx context.Context, product, customer, valid string) (sign.Envelope, error) {
	var env sign.Envelope
	body := api.NewBundle{Valid: valid}
	return env, c.do(ctx, http.MethodPost, productPath(product)+"/customers/"+esc(customer)+"/bundles", nil, body, &env)
}

// ImportExport hands a signed export from an air-gapped site to the server,
// which records its new reports as check-ins (releaser).
func (c *Client) ImportExport(ctx context.Context, env sign.Envelope) (release.ImportResult, error) {
	var res release.ImportResult
	return res, c.do(ctx, http.MethodPost, "/api/v1/exports", nil, env, &res)
}
