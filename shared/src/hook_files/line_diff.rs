//! A unified diff of two texts, line by line, as `diff -u` prints it: hunks of changed
//! lines with a few lines of context each side, under `@@ -start,len +start,len @@`.
//! Written here because `taskhooks apply` needs only this and the workspace has no diff
//! crate.

/// Lines of context each side of a change, `diff -u`'s default.
pub const CONTEXT: usize = 3;

/// The most line pairs aligned by the quadratic longest-common-subsequence table (16 MB of
/// `u32`). Two JSON documents differ in a few places, so after their common start and end
/// are trimmed the rest is small; past this it is shown as removed, then added, which is
/// still a correct diff, only a longer one.
const MAX_TABLE_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Removed,
    Added,
}

/// One line of the edit script, with the positions (0-based) in `before` and `after` it
/// starts at.
#[derive(Debug, Clone, Copy)]
struct Edit {
    op: Op,
    old: usize,
    new: usize,
}

/// The unified diff of `before` into `after`: empty when they are equal. Each line is
/// prefixed with ` `, `-` or `+`; hunk headers start with `@@`.
pub fn unified(before: &[String], after: &[String], context: usize) -> Vec<String> {
    let script = edit_script(before, after);
    let changes: Vec<usize> = script.iter().enumerate().filter(|(_, e)| e.op != Op::Same).map(|(i, _)| i).collect();
    let Some((&first, rest)) = changes.split_first() else { return Vec::new() };
    // Changes closer than twice the context share a hunk, as `diff -u` joins them.
    let mut ranges = vec![(first, first)];
    for &i in rest {
        let last = ranges.last_mut().expect("one range at least");
        if i - last.1 - 1 <= 2 * context {
            last.1 = i;
        } else {
            ranges.push((i, i));
        }
    }
    let mut out = Vec::new();
    for (start, end) in ranges {
        let lo = start.saturating_sub(context);
        let hi = (end + context).min(script.len() - 1);
        let hunk = &script[lo..=hi];
        let old_len = hunk.iter().filter(|e| e.op != Op::Added).count();
        let new_len = hunk.iter().filter(|e| e.op != Op::Removed).count();
        // `diff -u` numbers from 1 and, for an empty side, names the line before it.
        let header_start = |pos: usize, len: usize| if len == 0 { pos } else { pos + 1 };
        out.push(format!(
            "@@ -{},{old_len} +{},{new_len} @@",
            header_start(hunk[0].old, old_len),
            header_start(hunk[0].new, new_len)
        ));
        for e in hunk {
            out.push(match e.op {
                Op::Same => format!(" {}", before[e.old]),
                Op::Removed => format!("-{}", before[e.old]),
                Op::Added => format!("+{}", after[e.new]),
            });
        }
    }
    out
}

fn edit_script(before: &[String], after: &[String]) -> Vec<Edit> {
    let prefix = before.iter().zip(after).take_while(|(a, b)| a == b).count();
    let suffix = before[prefix..].iter().rev().zip(after[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    let (a, b) = (&before[prefix..before.len() - suffix], &after[prefix..after.len() - suffix]);
    let mut script = Vec::with_capacity(before.len() + after.len());
    let (mut old, mut new) = (0, 0);
    let mut push = |op: Op, script: &mut Vec<Edit>| {
        script.push(Edit { op, old, new });
        if op != Op::Added {
            old += 1;
        }
        if op != Op::Removed {
            new += 1;
        }
    };
    for _ in 0..prefix {
        push(Op::Same, &mut script);
    }
    for op in middle_ops(a, b) {
        push(op, &mut script);
    }
    for _ in 0..suffix {
        push(Op::Same, &mut script);
    }
    script
}

/// The edit script of the differing middle: a longest common subsequence when the table
/// fits, else all of `a` removed and all of `b` added.
fn middle_ops(a: &[String], b: &[String]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    if (n + 1).saturating_mul(m + 1) > MAX_TABLE_CELLS {
        return std::iter::repeat_n(Op::Removed, n).chain(std::iter::repeat_n(Op::Added, m)).collect();
    }
    // lcs[i * (m + 1) + j]: the longest common subsequence of a[i..] and b[j..].
    let width = m + 1;
    let mut lcs = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push(Op::Same);
            i += 1;
            j += 1;
        } else if j == m || (i < n && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
            // Removals before additions where both are as long, as `diff` prints them.
            ops.push(Op::Removed);
            i += 1;
        } else {
            ops.push(Op::Added);
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert!(unified(&lines("a\nb"), &lines("a\nb"), CONTEXT).is_empty());
        assert!(unified(&[], &[], CONTEXT).is_empty());
    }

    #[test]
    fn one_change_in_the_middle_gets_context_both_sides() {
        let before = lines("1\n2\n3\n4\n5\n6\n7\n8\n9");
        let after = lines("1\n2\n3\n4\nfive\n6\n7\n8\n9");
        assert_eq!(unified(&before, &after, 3), lines("@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8"));
    }

    #[test]
    fn distant_changes_get_separate_hunks_and_near_ones_share() {
        let before: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
        let mut after = before.clone();
        after[1] = "two".into();
        after[17] = "eighteen".into();
        let diff = unified(&before, &after, 1);
        assert_eq!(diff, lines("@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n@@ -17,3 +17,3 @@\n 17\n-18\n+eighteen\n 19"));
        after[3] = "four".into();
        let joined = unified(&before, &after, 1);
        assert_eq!(joined[0], "@@ -1,5 +1,5 @@", "{joined:#?}");
        assert_eq!(joined.iter().filter(|l| l.starts_with("@@")).count(), 2);
    }

    #[test]
    fn insertions_and_deletions_at_the_ends() {
        assert_eq!(unified(&[], &lines("a\nb"), 3), lines("@@ -0,0 +1,2 @@\n+a\n+b"));
        assert_eq!(unified(&lines("a\nb"), &[], 3), lines("@@ -1,2 +0,0 @@\n-a\n-b"));
        assert_eq!(unified(&lines("a\nb"), &lines("a\nb\nc"), 3), lines("@@ -1,2 +1,3 @@\n a\n b\n+c"));
    }

    #[test]
    fn lines_moved_around_are_aligned_on_what_stays() {
        let diff = unified(&lines("x\na\nb\nc"), &lines("a\nb\nx\nc"), 0);
        assert_eq!(diff, lines("@@ -1,1 +0,0 @@\n-x\n@@ -3,0 +3,1 @@\n+x"));
    }

    #[test]
    fn a_middle_too_large_to_align_is_removed_then_added() {
        let before: Vec<String> = (0..3000).map(|i| format!("a{i}")).collect();
        let after: Vec<String> = (0..3000).map(|i| format!("b{i}")).collect();
        let diff = unified(&before, &after, 3);
        assert_eq!(diff[0], "@@ -1,3000 +1,3000 @@");
        assert!(diff[1..3001].iter().all(|l| l.starts_with('-')) && diff[3001..].iter().all(|l| l.starts_with('+')));
    }
}
