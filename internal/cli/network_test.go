package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lamina-project/lamina/internal/sandbox"
	"github.com/spf13/pflag"
)

// networkConfig parses args as the --function-network* flags.
func networkConfig(args []string) (sandbox.NetworkConfig, error) {
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	var n functionNetworkFlags
	n.register(fs)
	if err := fs.Parse(args); err != nil {
		return sandbox.NetworkConfig{}, err
	}
	return n.config()
}

func TestFunctionNetworkFlags(t *testing.T) {
	cfg, err := networkConfig([]string{
		"--function-network", "allowlist",
		"--function-network-allow", "10.1.0.0/16,192.0.2.7",
		"--function-network-allow", "10.2.3.4/8",
		"--function-network-deny", "10.1.9.0/24",
		"--function-network-subnet", "10.216.4.0/22",
		"--function-network-dns", "127.0.0.53",
		"--function-network-dns", "127.0.0.1:5353",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(cfg.Mode, cfg.Allow, cfg.Deny, cfg.Subnet, cfg.DNS)
	want := "allowlist [10.1.0.0/16 192.0.2.7/32 10.0.0.0/8] [10.1.9.0/24] 10.216.4.0/22 [127.0.0.53:53 127.0.0.1:5353]\n"
	if got != want {
		t.Errorf("config %s, want %s", got, want)
	}
	if cfg, err := networkConfig(nil); err != nil || cfg.Mode != sandbox.NetworkInternet {
		t.Errorf("default: %v, %v; want internet", cfg.Mode, err)
	}

	for args, wantErr := range map[string]string{
		"--function-network offline":            "--function-network:",
		"--function-network allowlist":          "needs at least one --function-network-allow",
		"--function-network-allow 10.0.0.0/33":  "--function-network-allow",
		"--function-network-deny fd00::/8":      "--function-network-deny",
		"--function-network-subnet 10.216.4.0":  "--function-network-subnet",
		"--function-network-dns resolver.local": "--function-network-dns",
	} {
		if _, err := networkConfig(strings.Fields(args)); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: error %v, want one naming %s", args, err, wantErr)
		}
	}
}
