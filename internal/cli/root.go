// Package cli implements the `lamina` command: `lamina server` runs a node,
// and the client commands (create, list, get, update-code, delete, …) drive a
// server through the same Lambda API that the AWS CLI and SDKs use.
package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// NewRootCommand returns the `lamina` command with every subcommand.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "lamina",
		Short:         "Lamina: a self-hosted serverless function platform that speaks AWS Lambda's interfaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCommand())
	addClientCommands(root)
	return root
}

// defaultDataDir is ~/.lamina, or .lamina in the working directory when there
// is no home directory.
func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".lamina"
	}
	return filepath.Join(home, ".lamina")
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
