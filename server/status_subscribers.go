package server

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ringfence/ringfence/release"
)

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
