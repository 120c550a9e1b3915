package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// Load returns the keys of a process that was given key files: with privateFile
// (PKCS#8 PEM), keys that sign with it and verify with its public key; with only
// publicFile (PKIX PEM), keys that verify with it. Either way the keys are fixed:
// they are not fetched from identity and rotate only with the files. With neither
// file it returns NewVerifier(), which holds no key until identity's set is
// published to it — a process never makes a signing key of its own here.
func Load(privateFile, publicFile string) (*Keys, error) {
	switch {
	case privateFile != "":
		priv, err := ReadPrivateKey(privateFile)
		if err != nil {
			return nil, err
		}
		return NewKeys(priv), nil
	case publicFile != "":
		b, err := os.ReadFile(publicFile)
		if err != nil {
			return nil, fmt.Errorf("auth: read public key: %w", err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("auth: %s holds no PEM block", publicFile)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		pub, ok := k.(ed25519.PublicKey)
		if err != nil || !ok {
			return nil, fmt.Errorf("auth: %s is not an Ed25519 public key", publicFile)
		}
		return VerifyOnly(pub), nil
	}
	return NewVerifier(), nil
}

// ReadPrivateKey reads an Ed25519 private key in PKCS#8 PEM from path.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	priv, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return priv, nil
}

// ParsePrivateKey parses an Ed25519 private key in PKCS#8 PEM.
func ParsePrivateKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("not an Ed25519 private key in PKCS#8")
	}
	return priv, nil
}

// MarshalPrivateKey encodes an Ed25519 private key as PKCS#8 PEM.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicPEM returns the first published public key in PKIX PEM, for processes
// that are given the public key as a file.
func (k *Keys) PublicPEM() ([]byte, error) {
	keys := k.PublicKeys()
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: no public key")
	}
	der, err := x509.MarshalPKIXPublicKey(keys[0].Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
