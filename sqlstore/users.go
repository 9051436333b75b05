package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/ringfence/ringfence/release"
)

// User is a local account of the operators' console. Its password is kept
// only as an argon2id hash.
type User struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Role      release.Role `json:"role"`
	CreatedAt time.Time    `json:"created_at"`
	CreatedBy string       `json:"created_by"`
}

// userIDPrefix marks the identity of a user (as opposed to an API token) in
// release.Token.ID, and so in every audit log actor: "alice (user:0193…)".
const userIDPrefix = "user:"

// Identity is u as the API's handlers see a caller: name, role, and an id
// that says it is a user, so changes are attributed to the person.
func (u User) Identity() release.Token {
	return release.Token{ID: userIDPrefix + u.ID, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, CreatedBy: u.CreatedBy}
}

// Password rules: long enough to resist guessing, short enough that hashing
// cannot be abused.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// argon2id parameters (OWASP's recommended minimum: 19 MiB, 2 passes, 1
// lane): about 30 ms on one core, so a login costs the server little and a
// guess costs an attacker the same.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// hashPassword returns password's argon2id hash in the PHC string format.
func hashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the PHC-format hash,
// comparing in constant time. The parameters come from the hash, so hashes
// made with other costs keep working.
func checkPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("stored password hash is not argon2id")
	}
	var version int
	var mem, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("stored password hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads); err != nil {
		return false, fmt.Errorf("stored password hash: parameters %q: %w", parts[3], err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("stored password hash: salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, fmt.Errorf("stored password hash: key: %v", err)
	}
	got := argon2.IDKey([]byte(password), salt, passes, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// validatePassword checks a new password's length.
func validatePassword(password string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen || len(password) > MaxPasswordLen {
		return release.Errorf(release.EINVALID, "a password needs %d to %d characters, this one has %d", MinPasswordLen, MaxPasswordLen, n)
	}
	return nil
}

const userCols = `id, name, role, created_at, created_by`

func scanUser(row scanner) (User, error) {
	var u User
	var role string
	if err := row.Scan(&u.ID, &u.Name, &role, &u.CreatedAt, &u.CreatedBy); err != nil {
		return User{}, err
	}
	u.Role, u.CreatedAt = release.Role(role), u.CreatedAt.UTC()
	return u, nil
}

// CreateUser creates a console account name with role and password.
// ECONFLICT if the name is taken, EINVALID for a bad name, role or password.
func (s *Store) CreateUser(ctx context.Context, actor, name string, role release.Role, password string) (User, error) {
	if err := release.ValidateName("user", name); err != nil {
		return User{}, err
	}
	if !role.Valid() {
		return User{}, release.Errorf(release.EINVALID, "role %q: want viewer, releaser, incident or admin", role)
	}
	if err := validatePassword(password); err != nil {
		return User{}, err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := User{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Role: role, CreatedAt: now(), CreatedBy: actor}
	err = s.writeSilent(ctx, func(tx *sql.Tx) error {
		if ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE name = $1`, name); err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		} else if ok {
			return release.Errorf(release.ECONFLICT, "a user named %s exists", name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, name, role, password_hash, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6)`, u.ID, u.Name, string(u.Role), hash, u.CreatedAt, u.CreatedBy); err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		return audit(ctx, tx, actor, "user.create", "user/"+u.ID, nil, u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// ListUsers returns every console account, by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	return queryAll(ctx, s.rdb, scanUser, "list users", `SELECT `+userCols+` FROM users ORDER BY name`)
}

// DeleteUser deletes the account name and, with it, its sessions: whoever
// is logged in as it is logged out at their next request. ENOTFOUND if
// there is none.
func (s *Store) DeleteUser(ctx context.Context, actor, name string) error {
	return s.writeSilent(ctx, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
		if err != nil {
			return lookupErr(err, "delete user "+name, "user "+name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, u.ID); err != nil {
			return fmt.Errorf("delete sessions of user %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, u.ID); err != nil {
			return fmt.Errorf("delete user %s: %w", name, err)
		}
		return audit(ctx, tx, actor, "user.delete", "user/"+u.ID, u, nil)
	})
}

// dummyHash is checked against when a login names no user, so that an
// unknown name costs as much time as a wrong password and does not reveal
// which names exist.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4vVIxHbpQHj3xGMHXqoUz1xdH0tYyH2V2+M7BrBuYWQ"

// VerifyPassword returns the user name if password is theirs; EUNAUTHORIZED
// otherwise, the same for an unknown name as for a wrong password.
func (s *Store) VerifyPassword(ctx context.Context, name, password string) (User, error) {
	bad := release.Errorf(release.EUNAUTHORIZED, "unknown user or wrong password")
	if len(password) > MaxPasswordLen {
		return User{}, bad
	}
	var hash string
	row := s.rdb.QueryRowContext(ctx, `SELECT `+userCols+`, password_hash FROM users WHERE name = $1`, name)
	var u User
	var role string
	err := row.Scan(&u.ID, &u.Name, &role, &u.CreatedAt, &u.CreatedBy, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		_, _ = checkPassword(dummyHash, password)
		return User{}, bad
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user %s: %w", name, err)
	}
	ok, err := checkPassword(hash, password)
	if err != nil {
		return User{}, fmt.Errorf("check password of user %s: %w", name, err)
	}
	if !ok {
		return User{}, bad
	}
	u.Role, u.CreatedAt = release.Role(role), u.CreatedAt.UTC()
	return u, nil
}
