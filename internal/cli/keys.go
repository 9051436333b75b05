package cli

import (
	"context"
	"encoding/base64"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/api"
	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/sign"
)

// keysCommand is `ringfence keys`: the keys check-in answers are signed with.
func keysCommand() *ucli.Command {
	return apiGroup("keys", "answer-signing keys",
		apiCmd("list", "list the published verification keys (no token needed)", nil, nil, false, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			ks, err := c.PublicKeys(ctx)
			if err != nil {
				return err
			}
			return emitPublicKeys(cmd, api.PublicKeys{Keys: ks}, ks)
		}),
		apiCmd("rotate", "add a new signing key; old keys stay verifiable (admin)", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			k, err := c.RotateKey(ctx)
			if err != nil {
				return err
			}
			return emitPublicKeys(cmd, k, []sign.PublicKey{k})
		}),
	)
}

func emitPublicKeys(cmd *ucli.Command, v any, ks []sign.PublicKey) error {
	return emit(cmd, v, func(w io.Writer) {
		row(w, "KEYID", "PUBLIC KEY", "CREATED")
		for _, k := range ks {
			row(w, k.ID, encodeKey(k), fmtWhen(k.CreatedAt))
		}
	})
}

// encodeKey is the key's base64, as /v1/keys publishes it.
func encodeKey(k sign.PublicKey) string { return base64.StdEncoding.EncodeToString(k.Key) }
