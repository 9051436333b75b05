package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/incident"
	"github.com/ringfence/ringfence/release"
)

// The admin API of status page subscribers and their deliveries.
// Subscribers are not part of the check-in snapshot: no rebuild.

// componentIDs resolves component names to ids; ENOTFOUND names the first
// unknown one.
func (s *Server) componentIDs(ctx context.Context, names []string) ([]int64, error) {
	ids := []int64{}
	if len(names) == 0 {
		return ids, nil
	}
	page, err := s.store.StatusPage(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	byName := map[string]int64{}
	for _, c := range page.Components {
		byName[c.Name] = c.ID
	}
	for _, n := range names {
		id, ok := byName[n]
		if !ok {
			return nil, release.Errorf(release.ENOTFOUND, "component %q not found", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Server) listSubscribers(r *http.Request, _ release.Token) ([]incident.Subscriber, error) {
	return s.store.ListSubscribers(r.Context())
}

func (s *Server) createSubscriber(r *http.Request, who release.Token, req api.NewSubscriber) (api.CreatedSubscriber, error) {
	sub := incident.Subscriber{Kind: incident.SubscriberWebhook, Target: req.Webhook, Secret: req.Secret}
	switch {
	case (req.Webhook == "") == (req.Email == ""):
		return api.CreatedSubscriber{}, release.Errorf(release.EINVALID, "give exactly one of webhook and email")
	case req.Email != "":
		if !s.pages.canSubscribe {
			return api.CreatedSubscriber{}, release.Errorf(release.ECONFLICT, "email subscribers need an SMTP server, and this server has none configured")
		}
		if req.Secret != "" {
			return api.CreatedSubscriber{}, release.Errorf(release.EINVALID, "a secret only goes with a webhook")
		}
		sub = incident.Subscriber{Kind: incident.SubscriberEmail, Target: req.Email}
	}
	var err error
	if sub.Components, err = s.componentIDs(r.Context(), req.Components); err != nil {
		return api.CreatedSubscriber{}, err
	}
	sub, err = s.store.CreateSubscriber(r.Context(), who.Actor(), sub, s.pages.site)
	if err != nil {
		return api.CreatedSubscriber{}, err
	}
	s.notifier.Kick()
	secret := sub.Secret
	return api.CreatedSubscriber{Subscriber: sub, Secret: secret}, nil
}

func (s *Server) deleteSubscriber(r *http.Request, who release.Token) error {
	return s.store.DeleteSubscriber(r.Context(), who.Actor(), r.PathValue("id"))
}

func (s *Server) listDeliveries(r *http.Request, _ release.Token) ([]incident.Delivery, error) {
	limit, err := queryInt(r, "limit", 100, 10000)
	if err != nil {
		return nil, err
	}
	state := incident.DeliveryState(r.URL.Query().Get("state"))
	switch state {
	case "", incident.DeliveryPending, incident.DeliveryDelivered, incident.DeliveryDead:
	default:
		return nil, release.Errorf(release.EINVALID, "state %q: want pending, delivered or dead", state)
	}
	return s.store.ListDeliveries(r.Context(), state, limit)
}

func (s *Server) replayDelivery(r *http.Request, who release.Token, _ api.Empty) (api.Replayed, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return api.Replayed{}, release.Errorf(release.EINVALID, "delivery id %q is not a positive integer", r.PathValue("id"))
	}
	if err := s.store.ReplayDelivery(r.Context(), who.Actor(), id); err != nil {
		return api.Replayed{}, err
	}
	s.notifier.Kick()
	return api.Replayed{ID: id, State: incident.DeliveryPending}, nil
}
