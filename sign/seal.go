package sign

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeyEncryptionKey encrypts the private halves of signing keys for storage
// (AES-256-GCM, a random 96-bit nonce per key, the key id as associated
// data, so a sealed key cannot be moved to another key's row). It is kept
// outside the store: whoever can read the store but not the
// key-encryption key cannot sign answers.
type KeyEncryptionKey struct {
	aead cipher.AEAD
}

// KeyEncryptionKeySize is the size of a key-encryption key in bytes.
const KeyEncryptionKeySize = 32

// sealMagic starts every sealed private key; a plain ed25519 private key
// (64 bytes) never has the sealed length.
const sealMagic = "RFK1"

// sealedSize is the length of a sealed private key: magic, nonce,
// ciphertext and tag.
const sealedSize = len(sealMagic) + 12 + ed25519.PrivateKeySize + 16

// NewKeyEncryptionKey makes a key-encryption key of 32 raw bytes.
func NewKeyEncryptionKey(raw []byte) (*KeyEncryptionKey, error) {
	if len(raw) != KeyEncryptionKeySize {
		return nil, fmt.Errorf("key-encryption key: %d bytes, want %d", len(raw), KeyEncryptionKeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return &KeyEncryptionKey{aead: aead}, nil
}

// ParseKeyEncryptionKey reads a key-encryption key in its text form: 32
// bytes in base64 (standard or URL alphabet, padding optional), surrounding
// white space ignored.
func ParseKeyEncryptionKey(text string) (*KeyEncryptionKey, error) {
	s := strings.TrimRight(strings.TrimSpace(text), "=")
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		raw, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("key-encryption key: not base64 (want 32 random bytes in base64)")
	}
	return NewKeyEncryptionKey(raw)
}

// GenerateKeyEncryptionKey returns a new random key-encryption key in its
// text form (base64, with a trailing newline for a file).
func GenerateKeyEncryptionKey(rand io.Reader) (string, error) {
	raw := make([]byte, KeyEncryptionKeySize)
	if _, err := io.ReadFull(rand, raw); err != nil {
		return "", fmt.Errorf("generate key-encryption key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw) + "\n", nil
}

// RandomKeyEncryptionKey returns a new random key-encryption key that lives
// only in memory: for throwaway stores (benchmarks), whose keys need not
// outlive the process.
func RandomKeyEncryptionKey(rand io.Reader) (*KeyEncryptionKey, error) {
	text, err := GenerateKeyEncryptionKey(rand)
	if err != nil {
		return nil, err
	}
	return ParseKeyEncryptionKey(text)
}

// Sealed reports whether b is a sealed private key (as opposed to a plain
// one, which stores of older versions kept).
func Sealed(b []byte) bool {
	return len(b) == sealedSize && bytes.HasPrefix(b, []byte(sealMagic))
}

// Seal encrypts k's private half for storage, bound to k's id.
func (kek *KeyEncryptionKey) Seal(rand io.Reader, k Key) ([]byte, error) {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("seal signing key %s: %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
	}
	out := make([]byte, len(sealMagic)+kek.aead.NonceSize(), sealedSize)
	copy(out, sealMagic)
	if _, err := io.ReadFull(rand, out[len(sealMagic):]); err != nil {
		return nil, fmt.Errorf("seal signing key %s: %w", k.ID, err)
	}
	nonce := out[len(sealMagic):]
	return kek.aead.Seal(out, nonce, k.Private, []byte("ringfence signing key "+k.ID)), nil
}

// Open decrypts the sealed private half of the key with id keyID. It fails
// if sealed was not sealed by this key-encryption key for that id.
func (kek *KeyEncryptionKey) Open(keyID string, sealed []byte) (ed25519.PrivateKey, error) {
	if !Sealed(sealed) {
		return nil, fmt.Errorf("open signing key %s: not a sealed key", keyID)
	}
	n := len(sealMagic) + kek.aead.NonceSize()
	priv, err := kek.aead.Open(nil, sealed[len(sealMagic):n], sealed[n:], []byte("ringfence signing key "+keyID))
	if err != nil {
		return nil, fmt.Errorf("open signing key %s: wrong key-encryption key, or the stored key was altered", keyID)
	}
	k := ed25519.PrivateKey(priv)
	if KeyID(k.Public().(ed25519.PublicKey)) != keyID {
		return nil, fmt.Errorf("open signing key %s: the key does not match its id", keyID)
	}
	return k, nil
}
