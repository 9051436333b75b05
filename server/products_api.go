package server

import (
	"net/http"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/release"
)

// The admin API of products and their rings.

func (s *Server) listProducts(r *http.Request, _ release.Token) ([]release.Product, error) {
	return s.store.ListProducts(r.Context())
}

func (s *Server) createProduct(r *http.Request, who release.Token, req api.NewProduct) (release.Product, error) {
	p := release.Product{Name: req.Name, RequiredGates: req.RequiredGates}
	if req.Halt != nil {
		p.Policy = *req.Halt
	}
	return s.store.CreateProduct(r.Context(), who.Actor(), p)
}

func (s *Server) getProduct(r *http.Request, _ release.Token) (release.Product, error) {
	return s.store.GetProduct(r.Context(), r.PathValue("product"))
}

func (s *Server) updateProduct(r *http.Request, who release.Token, req api.ProductPatch) (release.Product, error) {
	return s.store.UpdateProduct(r.Context(), who.Actor(), r.PathValue("product"), func(p *release.Product) error {
		if err := ifMatch(r, *p); err != nil {
			return err
		}
		if req.RequiredGates != nil {
			p.RequiredGates = *req.RequiredGates
		}
		if req.Halt != nil {
			return p.Policy.PatchJSON(req.Halt)
		}
		return nil
	})
}

func (s *Server) listRings(r *http.Request, _ release.Token) ([]release.Ring, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return nil, err
	}
	return s.store.ListRings(r.Context(), product)
}

func (s *Server) getRing(r *http.Request, _ release.Token) (release.Ring, error) {
	product, err := s.existingProduct(r)
	if err != nil {
		return release.Ring{}, err
	}
	return s.store.GetRing(r.Context(), product, r.PathValue("ring"))
}

func (s *Server) createRing(r *http.Request, who release.Token, ring release.Ring) (release.Ring, error) {
	product := r.PathValue("product")
	if ring.Product != "" && ring.Product != product {
		return release.Ring{}, release.Errorf(release.EINVALID, "ring body names product %s, the path %s", ring.Product, product)
	}
	ring.Product = product
	return s.store.CreateRing(r.Context(), who.Actor(), ring)
}

func (s *Server) updateRing(r *http.Request, who release.Token, req api.RingPatch) (release.Ring, error) {
	return s.store.UpdateRing(r.Context(), who.Actor(), r.PathValue("product"), r.PathValue("ring"), func(ring *release.Ring) error {
		if err := ifMatch(r, *ring); err != nil {
			return err
		}
		if req.Position != nil {
			ring.Position = *req.Position
		}
		if req.Soak != nil {
			d, err := release.ParseDuration(*req.Soak)
			if err != nil {
				return release.Errorf(release.EINVALID, "soak: %s", release.ErrorMessage(err))
			}
			ring.SoakTime = d
		}
		if req.RolloutPercent != nil {
			ring.RolloutPercent = *req.RolloutPercent
		}
		if req.MinHealthy != nil {
			ring.MinHealthy = *req.MinHealthy
		}
		return nil
	})
}
