package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/sign"
	"github.com/ringfence/ringfence/sqlstore"
)

// kekFlags are serve's flags for the key-encryption key that seals the
// signing keys in the store.
func kekFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "key-encryption-key-file", Sources: ucli.EnvVars("RINGFENCE_KEY_ENCRYPTION_KEY_FILE"),
			Usage: "file holding the key (32 random bytes, base64) that encrypts the signing keys in the store; created (mode 0600) if missing " +
				"while the store has no encrypted keys. Default for a SQLite store: <db>.kek; a PostgreSQL store needs it (or RINGFENCE_KEY_ENCRYPTION_KEY)"},
	}
}

// kekEnv holds the key-encryption key itself, as an alternative to the file.
const kekEnv = "RINGFENCE_KEY_ENCRYPTION_KEY"

// keyEncryptionKey finds serve's key-encryption key: $RINGFENCE_KEY_ENCRYPTION_KEY,
// or the file of --key-encryption-key-file (default <db>.kek for SQLite).
// A missing file is created with a new key — unless the store already holds
// encrypted signing keys, which only the key they were encrypted with opens.
func keyEncryptionKey(ctx context.Context, cmd *ucli.Command, store *sqlstore.Store, log *slog.Logger) (*sign.KeyEncryptionKey, error) {
	if text, ok := os.LookupEnv(kekEnv); ok && text != "" {
		return sign.ParseKeyEncryptionKey(text)
	}
	path := cmd.String("key-encryption-key-file")
	if path == "" {
		if store.Dialect() != sqlstore.SQLite {
			return nil, errors.New("a PostgreSQL store needs --key-encryption-key-file (or " + kekEnv + "): the signing keys in it are encrypted " +
				"with a key kept outside the database, and every server sharing it needs the same key")
		}
		path = cmd.String("db") + ".kek"
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("key-encryption key file: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("key-encryption key file %s has mode %04o: group or other users could read it; refusing to use it (chmod 600 %s)", path, perm, path)
		}
		kek, err := sign.ParseKeyEncryptionKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return kek, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read key-encryption key file: %w", err)
	}
	sealed, err := store.HasSealedSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	if sealed {
		return nil, fmt.Errorf("key-encryption key file %s does not exist, but the store's signing keys are encrypted: "+
			"give the key they were encrypted with (--key-encryption-key-file or %s); refusing to start", path, kekEnv)
	}
	text, err := sign.GenerateKeyEncryptionKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kek, err := sign.ParseKeyEncryptionKey(text)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key-encryption key file: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key-encryption key file: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("write key-encryption key file: %w", err)
	}
	log.Warn("created a key-encryption key file; keep it (and back it up) apart from the store: without it the signing keys cannot be read",
		slog.String("file", strings.TrimSpace(path)))
	return kek, nil
}
