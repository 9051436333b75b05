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

// TrustFile is what a trust file holds: the keys to pin, in the /v1/keys
// format ({"keys": [{"keyid", "public_key", "created_at"}]}), and the ids
// of keys revoked (compromised), which are never trusted, whether pinned
// or learnt, nor anything they vouched for.
type TrustFile struct {
	Keys    []sign.PublicKey `json:"keys"`
	Revoked []string         `json:"revoked,omitempty"`
}

// ReadTrustFile reads a trust file: at least one key, each checked against
// its id, none of them revoked.
func ReadTrustFile(path string) (TrustFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return TrustFile{}, fmt.Errorf("read trust file: %w", err)
	}
	var doc TrustFile
	if err := json.Unmarshal(data, &doc); err != nil {
		return TrustFile{}, fmt.Errorf("read trust file %s: %w", path, err)
	}
	if len(doc.Keys) == 0 {
		return TrustFile{}, fmt.Errorf("trust file %s holds no keys", path)
	}
	for _, k := range doc.Keys {
		if err := k.Validate(); err != nil {
			return TrustFile{}, fmt.Errorf("trust file %s: %w", path, err)
		}
		if slices.Contains(doc.Revoked, k.ID) {
			return TrustFile{}, fmt.Errorf("trust file %s lists key %s both as a key and as revoked", path, k.ID)
		}
	}
	return doc, nil
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
		tf, err := ReadTrustFile(a.cfg.TrustFile)
		if err != nil {
			return err
		}
		keys := tf.Keys
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
		st.Pinned, st.PinnedFrom, st.Revoked = keys, "trust file "+a.cfg.TrustFile, tf.Revoked
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
// for it does: a trust file that drops that key drops it as well, and one
// that revokes either never trusts it again.
type LearnedKey struct {
	Key sign.PublicKey `json:"key"`
	// VouchedBy is the id of the trusted key that signed the introduction.
	VouchedBy string    `json:"vouched_by"`
	LearnedAt time.Time `json:"learned_at"`
	// Envelope is the answer or bundle that introduced the key, kept so
	// that the introduction is checked again whenever the key is trusted:
	// an entry written into the state file by hand introduces nothing.
	Envelope sign.Envelope `json:"envelope,omitzero"`
}

// MaxLearnedKeys bounds the keys an agent learns (one per rotation it
// followed); beyond it, the trust file must list the vendor's keys.
const MaxLearnedKeys = 16

// trusted returns the keys answers and bundles are verified with: the
// pinned keys, then each learned key whose introduction verifies with the
// keys trusted so far (following a chain of rotations), never a revoked
// one.
func (st *State) trusted() []sign.PublicKey {
	out := slices.Clone(st.Pinned) // a trust file never pins a key it revokes (ReadTrustFile)
	has := func(id string) bool {
		return slices.ContainsFunc(out, func(k sign.PublicKey) bool { return k.ID == id })
	}
	for grew := true; grew; {
		grew = false
		for _, l := range st.Learned {
			if has(l.Key.ID) || !has(l.VouchedBy) || slices.Contains(st.Revoked, l.Key.ID) {
				continue
			}
			intro, err := sign.Introductions(l.Envelope, out)
			if err == nil && slices.ContainsFunc(intro, func(i sign.Introduction) bool { return i.Key.ID == l.Key.ID && i.Key.Key.Equal(l.Key.Key) }) {
				out, grew = append(out, l.Key), true
			}
		}
	}
	return out
}

// pruneLearned drops the learned keys no longer trusted (their voucher was
// unpinned or revoked, they were revoked, or their introduction does not
// verify) or now pinned (the trust file lists them), and logs the first.
func (a *Agent) pruneLearned(st *State) {
	trusted := st.trusted()
	var kept []LearnedKey
	for _, l := range st.Learned {
		switch {
		case slices.ContainsFunc(st.Pinned, func(k sign.PublicKey) bool { return k.ID == l.Key.ID }):
		case !slices.ContainsFunc(trusted, func(k sign.PublicKey) bool { return k.ID == l.Key.ID }):
			a.log.Warn("dropped a learned answer-signing key: it, or the key that vouched for it, is no longer trusted",
				"key", l.Key.ID, "vouched_by", l.VouchedBy)
		default:
			kept = append(kept, l)
		}
	}
	st.Learned = kept
}

// learn trusts the keys a verified envelope introduces (see LearnedKey).
// env must have verified with trusted. A payload that names keys it may
// not teaches nothing: that is logged and kept in st.HandoverError for
// status (the envelope itself stands).
func (a *Agent) learn(st *State, env sign.Envelope, trusted []sign.PublicKey) {
	intro, err := sign.Introductions(env, trusted)
	if err != nil {
		st.HandoverError = "a signed answer names signing keys that could not be learned: " + err.Error()
		a.log.Warn("KEY ROTATION: "+st.HandoverError+"; none learned", "err", err)
		return
	}
	st.HandoverError = ""
	for _, i := range intro {
		switch {
		case slices.Contains(st.Revoked, i.Key.ID):
			continue
		case len(st.Learned) >= MaxLearnedKeys:
			st.HandoverError = fmt.Sprintf("key %s not learned: %d keys learned already; put the vendor's current keys in the trust file", i.Key.ID, len(st.Learned))
			a.log.Warn("KEY ROTATION: " + st.HandoverError)
			continue
		}
		st.Learned = append(st.Learned, LearnedKey{Key: i.Key, VouchedBy: i.By, LearnedAt: a.cfg.Now().UTC(), Envelope: env})
		a.log.Info("KEY ROTATION: learned the vendor's new answer-signing key from a signed answer; ship it in the trust file with the next product update",
			"key", i.Key.ID, "vouched_by", i.By)
	}
}
