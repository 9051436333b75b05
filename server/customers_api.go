package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// The admin API of customers and their enrollment keys.

func (s *Server) listCustomers(r *http.Request, _ release.Token) ([]release.Customer, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListCustomers(r.Context(), product)
}

func (s *Server) createCustomer(r *http.Request, who release.Token, req api.NewCustomer) (release.Customer, error) {
	return s.store.CreateCustomer(r.Context(), who.Actor(), release.Customer{Product: r.PathValue("product"), Name: req.Name, Ring: req.Ring})
}

func (s *Server) getCustomer(r *http.Request, _ release.Token) (release.Customer, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return release.Customer{}, err
	}
	return s.store.GetCustomer(r.Context(), product, r.PathValue("customer"))
}

// updateCustomer moves a customer to another ring; with If-Match, only if
// the customer is still as it was read (412 otherwise).
func (s *Server) updateCustomer(r *http.Request, who release.Token, req api.CustomerPatch) (release.Customer, error) {
	return s.store.UpdateCustomer(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"), func(c *release.Customer) error {
		if err := ifMatch(r, *c); err != nil {
			return err
		}
		c.Ring = req.Ring
		return nil
	})
}

func (s *Server) listKeys(r *http.Request, _ release.Token) ([]release.EnrollmentKey, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	customer := r.PathValue("customer")
	if ok, err := s.store.CustomerExists(r.Context(), product, customer); err != nil {
		return nil, err
	} else if !ok {
		return nil, release.Errorf(release.ENOTFOUND, "customer %s of %s not found", customer, product)
	}
	return s.store.ListEnrollmentKeys(r.Context(), product, customer)
}

func (s *Server) createKey(r *http.Request, who release.Token, _ api.Empty) (api.EnrollmentKey, error) {
	k, secret, err := s.store.CreateEnrollmentKey(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"))
	return api.EnrollmentKey{EnrollmentKey: k, Key: secret}, err
}

func (s *Server) revokeKey(r *http.Request, who release.Token) error {
	return s.store.RevokeEnrollmentKey(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("customer"), r.PathValue("id"))
}
