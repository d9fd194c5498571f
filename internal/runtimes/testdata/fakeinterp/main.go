// Command fakeinterp stands in for an interpreter in discovery tests: it
// prints the contents of the file next to it named like itself plus
// ".version" (as `python3.12 --version` prints "Python 3.12.1"), and leaves
// a ".ran" file there to show it was run. Without a .version file it fails.
package main

import (
	"fmt"
	"os"
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.WriteFile(exe+".ran", nil, 0o644)
	version, err := os.ReadFile(exe + ".version")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(version)
}
