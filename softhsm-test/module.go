package softhsmtest

import (
	"fmt"
	"os"
	"strings"
)

// modulePaths lists where Debian, Ubuntu and source builds install the SoftHSM2 module.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// ModulePath returns the path of the first SoftHSM2 PKCS#11 module (libsofthsm2.so)
// found in the usual install locations.
func ModulePath() (string, error) {
	for _, path := range modulePaths {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("softhsm2 module libsofthsm2.so not found in %s: "+
		"install the softhsm2 package (apt-get install softhsm2)",
		strings.Join(modulePaths, ", "))
}
