// Command lamina is Lamina's one binary: `lamina server` runs a node, the
// other subcommands are its client.
package main

import "github.com/lamina-project/lamina/internal/cli"

func main() { cli.Execute() }
