package cli

import (
	"context"
	"errors"
	"io"

	ucli "github.com/urfave/cli/v3"
)

// loadgenCommand drives load against a running Agora. (Placeholder: being built.)
func loadgenCommand(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:  "loadgen",
		Usage: "drive load against a running Agora",
		Action: func(context.Context, *ucli.Command) error {
			return errors.New("loadgen: not built yet")
		},
	}
}
