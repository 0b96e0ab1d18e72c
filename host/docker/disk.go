package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/openflynn/flynn/host/daemon"
)

// minEntryCost is what each file, directory or link of a writable layer
// counts for at least: a block, about what an inode and its directory
// entry take. Without it a job could make millions of empty files, which
// use no blocks yet fill the inode table and make every measurement slow;
// with it a measurement stops after at most limit/minEntryCost entries.
const minEntryCost = 4096

// DiskUsage returns what the container has written to its own filesystem.
//
// With the overlay2 driver (and any other that reports an UpperDir) that is
// the size of the container's upper directory, measured here by a walk
// that stops once past limit. Docker's own measure, SizeRw (inspect with
// size=true, or `docker ps -s`), walks the whole layer inside dockerd on
// every call, with no bound, and with overlay2's naive diff compares it
// with the image's layers too: it is the fallback for storage drivers
// that keep the layer elsewhere, and for a flynn-host that cannot see
// Docker's directory (run in a container without it).
func (b *Backend) DiskUsage(ctx context.Context, id string, limit int64) (int64, error) {
	dir, err := b.layerDir(ctx, id)
	if err != nil {
		return 0, err
	}
	if dir != "" {
		return dirUsage(ctx, dir, limit)
	}
	info, _, err := b.c.ContainerInspectWithRaw(ctx, id, true)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return 0, fmt.Errorf("inspect container size: %w", err)
	}
	if info.SizeRw == nil {
		return 0, fmt.Errorf("docker reports no size for container %s", id)
	}
	return *info.SizeRw, nil
}

// layerDir returns the directory of the container's writable layer, or ""
// when there is none this process can read. It is asked once per container.
func (b *Backend) layerDir(ctx context.Context, id string) (string, error) {
	b.mu.Lock()
	dir, known := b.layers[id]
	b.mu.Unlock()
	if known {
		return dir, nil
	}
	info, err := b.c.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("%w: %s", daemon.ErrContainerNotFound, id)
		}
		return "", fmt.Errorf("inspect container: %w", err)
	}
	if info.ContainerJSONBase != nil {
		dir = info.GraphDriver.Data["UpperDir"]
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			dir = ""
		}
	}
	b.mu.Lock()
	b.layers[id] = dir
	b.mu.Unlock()
	return dir, nil
}

// dirUsage adds up the disk space used under root (blocks allocated, each
// entry at least minEntryCost, a file with several links once), stopping
// as soon as the total is past limit when limit > 0. Its memory is bounded
// by what it visits: directories are read 256 entries at a time.
func dirUsage(ctx context.Context, root string, limit int64) (int64, error) {
	if _, err := os.Lstat(root); err != nil {
		return 0, fmt.Errorf("measure %s: %w", root, err)
	}
	var total int64
	linked := map[uint64]bool{} // inodes of files with several links, counted once
	stack := []string{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we walked
			}
			return total, fmt.Errorf("measure %s: %w", root, err)
		}
		for {
			ents, err := f.ReadDir(256)
			for _, e := range ents {
				info, ierr := e.Info()
				if ierr != nil {
					continue // removed while we walked
				}
				cost := max(int64(minEntryCost), info.Size())
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					if st.Nlink > 1 && !e.IsDir() {
						if linked[st.Ino] {
							continue
						}
						linked[st.Ino] = true
					}
					cost = max(int64(minEntryCost), st.Blocks*512)
				}
				total += cost
				if e.IsDir() {
					stack = append(stack, filepath.Join(dir, e.Name()))
				}
				if limit > 0 && total > limit {
					f.Close()
					return total, nil
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return total, fmt.Errorf("measure %s: %w", root, err)
			}
		}
		f.Close()
	}
	return total, nil
}
