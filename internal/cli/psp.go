package cli

import (
	"context"
	"errors"
	"io"

	ucli "github.com/urfave/cli/v3"
)

// pspCommand runs the payment-provider simulator. (Placeholder: being built.)
func pspCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "psp",
		Usage: "run the payment-provider simulator",
		Action: func(context.Context, *ucli.Command) error {
			return errors.New("psp: not built yet")
		},
	}
}
