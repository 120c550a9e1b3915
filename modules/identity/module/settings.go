package module

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v3"
	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/identity"
)

// Settings are identity's own settings: its keys and its sign-in limits.
type Settings struct {
	// JWTPrivateKeyFile is an Ed25519 key (PKCS#8 PEM) that signs access tokens,
	// for the process that runs identity; without it identity keeps its keys in its
	// database. JWTPublicKeyFile (PKIX PEM) fixes the key of a process that only
	// verifies; without it the process fetches identity's key set over the bus.
	JWTPrivateKeyFile string
	JWTPublicKeyFile  string
	// AuthPerIPPerMinute bounds sign-in and sign-up attempts per client address.
	AuthPerIPPerMinute int
}

// DefaultSettings returns identity's zero-configuration settings: keys in its
// database, 20 sign-ins per address and minute.
func DefaultSettings() Settings { return Settings{AuthPerIPPerMinute: 20} }

// New returns identity as the registry lists it, with its default settings: the
// verification every process does, and the command `agora admin create`.
func New() modhost.Module {
	s := DefaultSettings()
	flags := []ucli.Flag{
		modhost.Setting(&s.JWTPrivateKeyFile, "jwt-private-key-file", "Ed25519 private key (PKCS#8 PEM) that signs access tokens, for the process that runs identity (default: keys in identity's database)"),
		modhost.Setting(&s.JWTPublicKeyFile, "jwt-public-key-file", "Ed25519 public key (PKIX PEM) for processes that verify tokens but do not run identity (default: fetched from identity over the bus)"),
		modhost.Setting(&s.AuthPerIPPerMinute, "auth-per-ip-per-minute", "sign-in and sign-up attempts allowed per client address and minute (raise it for load tests from one address)"),
	}
	return modhost.Module{
		Name: "identity",
		// One is enough for sign-ins and refreshes (every process verifies tokens
		// itself); more are safe: keys and revocations live in identity's database.
		Replicas:   1,
		Flags:      flags,
		Run:        func() fx.Option { return Module(s) },
		Routes:     func() any { return routes(s) },
		Everywhere: func() fx.Option { return Verification(s) },
		Commands: func(start modhost.Starter, stdio modhost.Stdio) []*ucli.Command {
			return []*ucli.Command{adminCommand(start, stdio)}
		},
	}
}

// adminCommand is `agora admin create`: the operator's way to the first admin.
func adminCommand(start modhost.Starter, stdio modhost.Stdio) *ucli.Command {
	return &ucli.Command{
		Name:  "admin",
		Usage: "operator tasks",
		Commands: []*ucli.Command{{
			Name:  "create",
			Usage: "create an admin account (the first admin, or another); the password comes from AGORA_ADMIN_PASSWORD or standard input",
			Flags: []ucli.Flag{&ucli.StringFlag{Name: "email", Required: true, Usage: "the admin's email"}},
			Action: func(ctx context.Context, cmd *ucli.Command) error {
				password, err := readPassword(stdio.In)
				if err != nil {
					return err
				}
				return createAdmin(ctx, start, cmd.String("email"), password)
			},
		}},
	}
}

// createAdmin creates an admin account through the bus, with identity running in
// a process of its own for the occasion (its database, migrations, handlers).
func createAdmin(ctx context.Context, start modhost.Starter, email, password string) error {
	p, err := start(ctx, "identity")
	if err != nil {
		return err
	}
	defer p.Stop()
	u, err := bus.Call(ctx, p.Bus, identity.CreateUserRequest, identity.CreateUser{Email: email, Password: password, Role: identity.RoleAdmin})
	if err != nil {
		return fmt.Errorf("create admin %s: %w", email, err)
	}
	p.Log.Info("admin created", "user_id", u.ID, "email", u.Email)
	return nil
}

// readPassword takes the admin password from AGORA_ADMIN_PASSWORD, or else the first
// line of stdin.
func readPassword(stdin io.Reader) (string, error) {
	password := os.Getenv("AGORA_ADMIN_PASSWORD")
	if password == "" && stdin != nil {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return "", errors.New("give the password in AGORA_ADMIN_PASSWORD or on standard input")
	}
	return password, nil
}
