package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ringfence/ringfence/sign"
)

// ReadTrustFile reads public keys in the /v1/keys format
// ({"keys": [{"keyid", "public_key", "created_at"}]}), each checked against
// its id.
func ReadTrustFile(path string) ([]sign.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	var doc struct {
		Keys []sign.PublicKey `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("read trust file %s: %w", path, err)
	}
	if len(doc.Keys) == 0 {
		return nil, fmt.Errorf("trust file %s holds no keys", path)
	}
	for _, k := range doc.Keys {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("trust file %s: %w", path, err)
		}
	}
	return doc.Keys, nil
}

// pin adds keys to st's pinned keys and returns the ids it added.
func pin(st *State, keys []sign.PublicKey) []string {
	var added []string
	for _, k := range keys {
		if !slices.ContainsFunc(st.Pinned, func(p sign.PublicKey) bool { return p.ID == k.ID }) {
			st.Pinned = append(st.Pinned, k)
			added = append(added, k.ID)
		}
	}
	return added
}

// ensureTrust makes sure st has pinned keys. With a trust file, the file is
// authoritative, read at every check-in: its keys are the pinned keys, so a
// product update that ships a rotated key reaches the agent, and one that
// leaves out a compromised key revokes it. Without one, trust-on-first-use
// pins the server's /v1/keys once, with a loud warning, when nothing is
// pinned yet. After that a key is only learnt from a signed payload that a
// trusted key vouches for (LearnedKey), never from /v1/keys: see
// docs/agent.md, "Keys".
func (a *Agent) ensureTrust(ctx context.Context, st *State) error {
	if a.cfg.TrustFile != "" {
		keys, err := ReadTrustFile(a.cfg.TrustFile)
		if err != nil {
			return err
		}
		var removed []string
		for _, p := range st.Pinned {
			if !slices.ContainsFunc(keys, func(k sign.PublicKey) bool { return k.ID == p.ID }) {
				removed = append(removed, p.ID)
			}
		}
		added := pin(&State{Pinned: st.Pinned}, keys)
		if len(removed) > 0 {
			a.log.Warn("unpinned answer-signing keys the trust file no longer lists", "keys", strings.Join(removed, ","), "file", a.cfg.TrustFile)
		}
		if len(added) > 0 {
			a.log.Info("pinned answer-signing keys from the trust file", "keys", strings.Join(added, ","), "file", a.cfg.TrustFile)
		}
		st.Pinned, st.PinnedFrom = keys, "trust file "+a.cfg.TrustFile
		a.pruneLearned(st)
		return nil
	}
	if len(st.Pinned) > 0 {
		return nil
	}
	if !a.cfg.TrustOnFirstUse {
		return fmt.Errorf("no answer-signing key is pinned: give --trust FILE (the keys the vendor ships) or, once, --trust-on-first-use")
	}
	keys, err := a.client.PublicKeys(ctx)
	if err != nil {
		return fmt.Errorf("trust on first use: fetch /v1/keys: %w", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("trust on first use: %s/v1/keys lists no keys", a.cfg.Server)
	}
	added := pin(st, keys)
	st.PinnedFrom = "trust on first use of " + a.cfg.Server
	a.log.Warn("TRUST ON FIRST USE: pinned the answer-signing keys the server presented, without checking them against anything; "+
		"compare these key ids with the ones your vendor publishes, and prefer --trust FILE",
		"keys", strings.Join(added, ","), "server", a.cfg.Server)
	return nil
}

// LearnedKey is an answer-signing key the agent learned during a key
// rotation's overlap: named in a verified answer or bundle that a key it
// already trusted signed, and signed by the named key too
// (sign.Introductions). It stays trusted only while the key that vouched
// for it does: a trust file that drops that key drops it as well.
type LearnedKey struct {
	Key sign.PublicKey `json:"key"`
	// VouchedBy is the id of the trusted key that signed the introduction.
	VouchedBy string    `json:"vouched_by"`
	LearnedAt time.Time `json:"learned_at"`
}

// trusted returns the keys answers and bundles are verified with: the
// pinned keys, then the learned keys whose voucher is trusted (through any
// chain of rotations, each followed within its overlap).
func (st *State) trusted() []sign.PublicKey {
	out := slices.Clone(st.Pinned)
	has := func(id string) bool {
		return slices.ContainsFunc(out, func(k sign.PublicKey) bool { return k.ID == id })
	}
	for grew := true; grew; {
		grew = false
		for _, l := range st.Learned {
			if !has(l.Key.ID) && has(l.VouchedBy) {
				out, grew = append(out, l.Key), true
			}
		}
	}
	return out
}

// pruneLearned drops the learned keys no longer trusted (their voucher was
// unpinned) or now pinned (the trust file lists them), and logs the first.
func (a *Agent) pruneLearned(st *State) {
	trusted := st.trusted()
	var kept []LearnedKey
	for _, l := range st.Learned {
		switch {
		case slices.ContainsFunc(st.Pinned, func(k sign.PublicKey) bool { return k.ID == l.Key.ID }):
		case !slices.ContainsFunc(trusted, func(k sign.PublicKey) bool { return k.ID == l.Key.ID }):
			a.log.Warn("dropped a learned answer-signing key: the key that vouched for it is no longer trusted",
				"key", l.Key.ID, "vouched_by", l.VouchedBy)
		default:
			kept = append(kept, l)
		}
	}
	st.Learned = kept
}

// learn trusts the keys a verified envelope introduces (see LearnedKey).
// env must have verified with trusted. A payload that names keys it may
// not is logged and teaches nothing; the envelope itself stands.
func (a *Agent) learn(st *State, env sign.Envelope, trusted []sign.PublicKey) {
	intro, err := sign.Introductions(env, trusted)
	if err != nil {
		a.log.Warn("a signed payload names signing keys that cannot be learned; none learned", "err", err)
		return
	}
	for _, i := range intro {
		st.Learned = append(st.Learned, LearnedKey{Key: i.Key, VouchedBy: i.By, LearnedAt: a.cfg.Now().UTC()})
		a.log.Info("KEY ROTATION: learned the vendor's new answer-signing key from a signed answer; ship it in the trust file with the next product update",
			"key", i.Key.ID, "vouched_by", i.By)
	}
}
