//go:build unix

package config

import "syscall"

// writable reports why the process cannot create entries in directory p
// (or write file p), asking the kernel rather than reading permission
// bits, so that ownership, groups, ACLs and read-only mounts all count.
func writable(p string, dir bool) error {
	const wOK, xOK = 0x2, 0x1
	mode := uint32(wOK)
	if dir {
		mode |= xOK
	}
	return syscall.Access(p, mode)
}
