//! Parsing `/proc/self/mountinfo` (proc(5)): which mounts exist, where, of what type and device. The
//! parser is pure; [`read_self`] is the only I/O here.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u64,
    pub parent_id: u64,
    /// `major:minor` of the mounted filesystem; a bind mount shares it with its source.
    pub device: String,
    /// Root of the mount within its filesystem.
    pub root: String,
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`/`ro`, `nosuid`, …).
    pub options: String,
    pub fs_type: String,
    pub source: String,
}

impl MountEntry {
    /// Any FUSE filesystem: `fuse`, `fuseblk` or `fuse.<subtype>` (JuiceFS is `fuse.juicefs`).
    pub fn is_fuse(&self) -> bool {
        self.fs_type == "fuse" || self.fs_type == "fuseblk" || self.fs_type.starts_with("fuse.")
    }

    pub fn is_read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Parses mountinfo text; lines that do not follow the format are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let (head, tail) = line.split_once(" - ")?;
    let mut h = head.split(' ');
    let id = h.next()?.parse().ok()?;
    let parent_id = h.next()?.parse().ok()?;
    let device = h.next()?.to_string();
    let root = unescape(h.next()?);
    let mount_point = PathBuf::from(unescape(h.next()?));
    let options = h.next()?.to_string();
    let mut t = tail.split(' ');
    let fs_type = t.next()?.to_string();
    let source = unescape(t.next().unwrap_or(""));
    Some(MountEntry { id, parent_id, device, root, mount_point, options, fs_type, source })
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(d) = bytes.get(i + 1..i + 4)
            && d.iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount whose mount point is exactly `path`, in mountinfo order.
pub fn mounts_at<'a>(entries: &'a [MountEntry], path: &Path) -> Vec<&'a MountEntry> {
    entries.iter().filter(|e| e.mount_point == path).collect()
}

/// The mount visible at `path` (the top of a stack of mounts on the same point), if any.
pub fn top_mount_at<'a>(entries: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    let here = mounts_at(entries, path);
    // A mount stacked on another at the same point has the lower one as its parent.
    here.iter().copied().find(|e| !here.iter().any(|o| o.parent_id == e.id)).or_else(|| here.last().copied())
}

/// Reads this process's mount table.
pub fn read_self() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:45 / /runtime-mnt/juicefs/default/jfsdemo/juicefs-fuse rw,relatime shared:20 - fuse.juicefs JuiceFS:test rw,user_id=0,group_id=0,default_permissions,allow_other
41 22 0:45 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/default-jfsdemo/mount rw,relatime shared:20 - fuse.juicefs JuiceFS:test rw,user_id=0
42 41 0:52 / /var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/default-jfsdemo/mount ro,relatime shared:21 - fuse.juicefs JuiceFS:test rw,user_id=0
43 22 0:30 / /mnt/with\\040space rw - tmpfs tmpfs rw
44 22 0:31 / /sys/fs/fuse/connections rw - fusectl fusectl rw
garbage line
";

    #[test]
    fn parses_fields_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 6);
        let fuse = &m[1];
        assert_eq!(fuse.id, 40);
        assert_eq!(fuse.parent_id, 22);
        assert_eq!(fuse.device, "0:45");
        assert_eq!(fuse.fs_type, "fuse.juicefs");
        assert_eq!(fuse.source, "JuiceFS:test");
        assert!(fuse.is_fuse());
        assert!(!fuse.is_read_only());
        assert_eq!(m[4].mount_point, PathBuf::from("/mnt/with space"));
        assert!(!m[5].is_fuse(), "fusectl is not a FUSE mount");
        assert!(!m[0].is_fuse());
    }

    #[test]
    fn top_of_a_stack() {
        let m = parse(SAMPLE);
        let target = Path::new("/var/lib/kubelet/pods/p1/volumes/kubernetes.io~csi/default-jfsdemo/mount");
        assert_eq!(mounts_at(&m, target).len(), 2);
        let top = top_mount_at(&m, target).expect("mounted");
        assert_eq!(top.id, 42);
        assert!(top.is_read_only());
        assert!(top_mount_at(&m, Path::new("/nowhere")).is_none());
    }

    #[test]
    fn unescape_leaves_plain_backslashes() {
        assert_eq!(unescape(r"a\040b"), "a b");
        assert_eq!(unescape(r"a\\b"), r"a\\b");
        assert_eq!(unescape(r"end\04"), r"end\04");
        assert_eq!(unescape(r"x\134y"), r"x\y");
    }
}
