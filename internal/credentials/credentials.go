// Package credentials manages the admin access key pair of a Lamina server:
// generated on first start and kept in the data directory (mode 0600), or
// given by LAMINA_ACCESS_KEY_ID and LAMINA_SECRET_ACCESS_KEY. The CLI reads
// the same file, so a local server and the CLI work together without setup.
// The nodes of a cluster share one pair through their store, and each keeps
// it in its own data directory (see the server's clusterCredentials).
package credentials

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FileName is the name of the credentials file inside the data directory.
const FileName = "credentials"

// Environment variables that set the admin key pair.
const (
	EnvAccessKeyID     = "LAMINA_ACCESS_KEY_ID"
	EnvSecretAccessKey = "LAMINA_SECRET_ACCESS_KEY"
)

// Pair is an access key ID and its secret.
type Pair struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Load reads the pair stored in dataDir.
func Load(dataDir string) (Pair, error) {
	var p Pair
	data, err := os.ReadFile(filepath.Join(dataDir, FileName))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil || p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return p, fmt.Errorf("credentials file %s is damaged", filepath.Join(dataDir, FileName))
	}
	return p, nil
}

// Ensure returns the server's admin pair. The pair from the environment wins
// when both variables are set; otherwise the stored pair is used, and one is
// generated on first start. The pair in use is always what the file holds
// afterwards. created reports that a new pair was generated.
func Ensure(dataDir string) (p Pair, created bool, err error) {
	p, fromEnv, err := FromEnv()
	if err != nil {
		return p, false, err
	}
	if !fromEnv {
		p, err = Load(dataDir)
		if err == nil {
			return p, false, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return p, false, err
		}
		p, created = Generate(), true
	}
	return p, created, Keep(dataDir, p)
}

// FromEnv returns the pair that LAMINA_ACCESS_KEY_ID and
// LAMINA_SECRET_ACCESS_KEY set; ok is false when neither is set.
func FromEnv() (p Pair, ok bool, err error) {
	envID, envSecret := os.Getenv(EnvAccessKeyID), os.Getenv(EnvSecretAccessKey)
	switch {
	case envID != "" && envSecret != "":
		return Pair{AccessKeyID: envID, SecretAccessKey: envSecret}, true, nil
	case envID != "" || envSecret != "":
		return p, false, fmt.Errorf("set both %s and %s, or neither", EnvAccessKeyID, EnvSecretAccessKey)
	}
	return p, false, nil
}

// Keep makes p the pair stored in dataDir, unless it is already.
func Keep(dataDir string, p Pair) error {
	if stored, err := Load(dataDir); err == nil && stored == p {
		return nil
	}
	return write(dataDir, p)
}

// Generate makes a new pair shaped like AWS's: a 20-character key ID starting
// with "LKIA" and a 40-character secret.
func Generate() Pair {
	return Pair{
		AccessKeyID:     "LKIA" + rand.Text()[:16],
		SecretAccessKey: rand.Text() + rand.Text()[:14],
	}
}

// write stores p in dataDir with mode 0600, replacing any previous file
// atomically.
func write(dataDir string, p Pair) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dataDir, FileName+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dataDir, FileName))
}
