//go:build !unix

package datadir

import "os"

// Without flock(2) the folder is not locked: switchd is built for Unix;
// this keeps other builds compiling.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) error { return nil }
