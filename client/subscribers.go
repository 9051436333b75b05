package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
)

// Subscribers lists the status page's subscribers (no secrets; webhook URLs
// cut to scheme and host).
func (c *Client) Subscribers(ctx context.Context) ([]incident.Subscriber, error) {
	var out []incident.Subscriber
	return out, c.do(ctx, http.MethodGet, "/api/v1/subscribers", nil, nil, &out)
}

// CreateSubscriber adds a subscriber (incident role).
func (c *Client) CreateSubscriber(ctx context.Context, s NewSubscriber) (CreatedSubscriber, error) {
	var out CreatedSubscriber
	return out, c.do(ctx, http.MethodPost, "/api/v1/subscribers", nil, s, &out)
}

// DeleteSubscriber deletes a subscriber and its deliveries (incident role).
func (c *Client) DeleteSubscriber(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/subscribers/"+esc(id), nil, nil, nil)
}

// Deliveries lists up to limit deliveries, newest first: all, or those in
// state (pending, delivered, dead).
func (c *Client) Deliveries(ctx context.Context, state incident.DeliveryState, limit int) ([]incident.Delivery, error) {
	var out []incident.Delivery
	return out, c.do(ctx, http.MethodGet, "/api/v1/deliveries", listQuery(limit, "state", string(state)), nil, &out)
}

// ReplayDelivery makes a dead delivery pending again (incident role).
func (c *Client) ReplayDelivery(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodPost, "/api/v1/deliveries/"+strconv.FormatInt(id, 10)+"/replay", nil, api.Empty{}, nil)
}
