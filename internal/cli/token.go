package cli

import (
	"context"
	"io"

	ucli "github.com/urfave/cli/v3"

	"github.com/ringfence/ringfence/client"
	"github.com/ringfence/ringfence/release"
)

// tokenCommand is `ringfence token`: API tokens through the API (the first
// one comes from `ringfence admin token create`).
func tokenCommand() *ucli.Command {
	return apiGroup("token", "API tokens (admin)",
		apiCmd("list", "list API tokens", nil, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, _ []string) error {
			ts, err := c.Tokens(ctx)
			if err != nil {
				return err
			}
			return emit(cmd, ts, func(w io.Writer) {
				row(w, "ID", "NAME", "ROLE", "CREATED", "BY", "LAST USED", "REVOKED")
				for _, t := range ts {
					row(w, t.ID, t.Name, t.Role, fmtWhen(t.CreatedAt), t.CreatedBy, fmtWhenPtr(t.LastUsedAt), fmtWhenPtr(t.RevokedAt))
				}
			})
		}),
		apiCmd("create", "issue an API token; it is printed once", []string{"name"}, []ucli.Flag{
			&ucli.StringFlag{Name: "role", Value: string(release.RoleViewer), Usage: "viewer, releaser, incident or admin"},
		}, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			t, err := c.CreateToken(ctx, args[0], release.Role(cmd.String("role")))
			if err != nil {
				return err
			}
			return emitSecret(cmd, t, func(w io.Writer) {
				row(w, "id:", t.ID)
				row(w, "name:", t.Name)
				row(w, "role:", t.Role)
				row(w, "token:", t.Secret)
				row(w, "", "(shown only now)")
			})
		}),
		apiCmd("revoke", "revoke an API token", []string{"id"}, nil, true, func(ctx context.Context, cmd *ucli.Command, c *client.Client, args []string) error {
			if err := c.RevokeToken(ctx, args[0]); err != nil {
				return err
			}
			return emit(cmd, map[string]string{"revoked": args[0]}, func(w io.Writer) { row(w, "revoked token", args[0]) })
		}),
	)
}
