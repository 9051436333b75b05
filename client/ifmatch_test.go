package client_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/internal/problem"
	"github.com/ringfence/ringfence/release"
	"github.com/ringfence/ringfence/server"
)

// TestUpdateProductIfMatch: a read-modify-write with the ETag applies; one
// whose product changed since it was read is refused with 412 and changes
// nothing.
func TestUpdateProductIfMatch(t *testing.T) {
	ctx := context.Background()
	url, adminToken := startServer(t, server.Config{})
	admin := mustClient(t, url, adminToken)
	must[release.Product](t)(admin.CreateProduct(ctx, client.NewProduct{Name: "acme"}))
	p, etag, err := admin.ProductTagged(ctx, "acme")
	if err != nil || etag == "" {
		t.Fatalf("ProductTagged: %q %v", etag, err)
	}
	p.Policy.MinFailures = 4
	if _, err := admin.UpdateProductIfMatch(ctx, "acme", client.ProductPatch{Halt: policyJSON(t, p.Policy)}, etag); err != nil {
		t.Fatalf("update with the current ETag: %v", err)
	}
	p.Policy.MinFailures = 9
	_, err = admin.UpdateProductIfMatch(ctx, "acme", client.ProductPatch{Halt: policyJSON(t, p.Policy)}, etag)
	if release.ErrorCode(err) != problem.PreconditionFailed {
		t.Fatalf("update with a stale ETag: %v, want precondition_failed", err)
	}
	if got := must[release.Product](t)(admin.Product(ctx, "acme")); got.Policy.MinFailures != 4 {
		t.Errorf("min_failures = %d, want 4", got.Policy.MinFailures)
	}
}

// policyJSON is a whole halt policy as a ProductPatch's Halt.
func policyJSON(t *testing.T, p release.Policy) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
