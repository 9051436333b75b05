package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/notify"
	"github.com/ringfence/ringfence/release"
)

// --- admin API: subscribers and their deliveries ---

// subscriberRoutes are the admin routes of subscribers and deliveries.
// Subscribers are not part of the check-in snapshot: no rebuild.
func (s *Server) subscriberRoutes() []Route {
	const (
		viewer = release.RoleViewer
		inc    = release.RoleIncident
	)
	return []Route{
		{"GET", "/api/v1/subscribers", viewer, reply(s.listSubscribers)},
		{"POST", "/api/v1/subscribers", inc, apply(http.StatusCreated, nil, s.createSubscriber)},
		{"DELETE", "/api/v1/subscribers/{id}", inc, remove(nil, s.deleteSubscriber)},
		{"GET", "/api/v1/deliveries", viewer, reply(s.listDeliveries)},
		{"POST", "/api/v1/deliveries/{id}/replay", inc, apply(http.StatusOK, nil, s.replayDelivery)},
	}
}

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

func (s *Server) listSubscribers(r *http.Request, _ release.Token) ([]notify.Subscriber, error) {
	return s.store.ListSubscribers(r.Context())
}

func (s *Server) createSubscriber(r *http.Request, who release.Token, req api.NewSubscriber) (api.CreatedSubscriber, error) {
	sub := notify.Subscriber{Kind: notify.Webhook, Target: req.Webhook, Secret: req.Secret}
	switch {
	case (req.Webhook == "") == (req.Email == ""):
		return api.CreatedSubscriber{}, release.Errorf(release.EINVALID, "give exactly one of webhook and email")
	case req.Email != "":
		if !s.pages.canSubscribe {
			return api.CreatedSubscriber{}, release.Errorf(release.ECONFLICT, "email subscribers need an SMTP server: start serve with --smtp and --smtp-from")
		}
		if req.Secret != "" {
			return api.CreatedSubscriber{}, release.Errorf(release.EINVALID, "a secret only goes with a webhook")
		}
		sub = notify.Subscriber{Kind: notify.Email, Target: req.Email}
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

func (s *Server) listDeliveries(r *http.Request, _ release.Token) ([]notify.Delivery, error) {
	limit, err := queryInt(r, "limit", 100, 10000)
	if err != nil {
		return nil, err
	}
	state := notify.State(r.URL.Query().Get("state"))
	switch state {
	case "", notify.Pending, notify.Delivered, notify.Dead:
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
	return api.Replayed{ID: id, State: notify.Pending}, nil
}

// --- public: subscribe, confirm, unsubscribe (no login) ---

// statusRoutes mounts the public subscription endpoints. The documents of
// the page itself are served by servePublic.
func (s *Server) statusRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /subscriptions", s.subscribeByEmail)
	mux.HandleFunc("GET /subscriptions/confirm", s.subscriptionPage("confirm"))
	mux.HandleFunc("POST /subscriptions/confirm", s.confirmSubscription)
	mux.HandleFunc("GET /subscriptions/unsubscribe", s.subscriptionPage("unsubscribe"))
	mux.HandleFunc("POST /subscriptions/unsubscribe", s.unsubscribe)
}

// writePage answers an HTML message page. Pages of the subscription flows
// carry a token in their URL: they are not cached and send no referrer.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, status int, heading string, paragraphs []string, action, button string) {
	body, err := s.pages.message(heading, paragraphs, action, button)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) subscribeByEmail(w http.ResponseWriter, r *http.Request) {
	if !s.pages.canSubscribe {
		s.writePage(w, r, http.StatusNotFound, "Email updates are not available", []string{"This status page does not send email."}, "", "")
		return
	}
	if !s.subscribe.Allow() {
		w.Header().Set("Retry-After", "60")
		s.writePage(w, r, http.StatusTooManyRequests, "Please try again in a minute", []string{"Many subscriptions arrived at once."}, "", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.writePage(w, r, http.StatusBadRequest, "That did not work", []string{"The form could not be read."}, "", "")
		return
	}
	var comps []int64
	for _, v := range r.PostForm["component"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.writePage(w, r, http.StatusBadRequest, "That did not work", []string{"Unknown component " + v + "."}, "", "")
			return
		}
		comps = append(comps, id)
	}
	if site := s.statusSite.Load(); site != nil && len(comps) > 0 {
		known := map[int64]bool{}
		for _, c := range site.page.Components {
			known[c.ID] = true
		}
		for _, id := range comps {
			if !known[id] {
				s.writePage(w, r, http.StatusBadRequest, "That did not work", []string{"Unknown component " + strconv.FormatInt(id, 10) + "."}, "", "")
				return
			}
		}
	}
	err := s.store.Subscribe(r.Context(), r.PostForm.Get("email"), comps, s.pages.site)
	if release.ErrorCode(err) == release.EINVALID {
		s.writePage(w, r, http.StatusBadRequest, "Check the address", []string{release.ErrorMessage(err)}, "", "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.notifier.Kick()
	s.writePage(w, r, http.StatusAccepted, "Check your inbox",
		[]string{"If the address can receive updates, a confirmation link is on its way. Nothing is sent until you follow it."}, "", "")
}

// subscriptionPage answers the GET of a confirm or unsubscribe link with a
// page whose button POSTs it: link scanners that fetch every URL in an
// email do not confirm or unsubscribe anyone.
func (s *Server) subscriptionPage(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		action := s.cfg.PublicURL + "/subscriptions/" + what + "?token=" + url.QueryEscape(r.URL.Query().Get("token"))
		if what == "confirm" {
			s.writePage(w, r, http.StatusOK, "Confirm your subscription", []string{"Confirm to receive status updates of " + s.pages.site.Name + "."}, action, "Confirm subscription")
			return
		}
		s.writePage(w, r, http.StatusOK, "Unsubscribe", []string{"Stop receiving status updates of " + s.pages.site.Name + " at this address?"}, action, "Unsubscribe")
	}
}

func (s *Server) confirmSubscription(w http.ResponseWriter, r *http.Request) {
	sub, err := s.store.ConfirmSubscription(r.Context(), r.URL.Query().Get("token"))
	if release.ErrorCode(err) == release.ENOTFOUND {
		s.writePage(w, r, http.StatusNotFound, "Subscription not found", []string{"The link is wrong or the subscription was cancelled. Subscribe again on the status page."}, "", "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writePage(w, r, http.StatusOK, "You are subscribed", []string{"Status updates of " + s.pages.site.Name + " will be sent to " + sub.Target + ". Every email has a link to unsubscribe."}, "", "")
}

// unsubscribe is the target of the unsubscribe button and of RFC 8058
// one-click unsubscription (a POST with List-Unsubscribe=One-Click).
// Unsubscribing an address that is no longer subscribed succeeds.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	err := s.store.Unsubscribe(r.Context(), r.URL.Query().Get("token"))
	if err != nil && release.ErrorCode(err) != release.ENOTFOUND {
		s.fail(w, r, err)
		return
	}
	s.writePage(w, r, http.StatusOK, "Unsubscribed", []string{"You will not receive status updates at this address any more."}, "", "")
}
