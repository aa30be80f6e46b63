//! Telling a pipeline or template by the first lines of a `.yml`/`.yaml` file, for discovery.

/// Whether the start of a YAML file is an Azure Pipelines pipeline or template: a top-level
/// `steps`, `jobs` or `stages` key whose list starts with a step, job or stage (`- task: …`,
/// `- job: …`, `- template: …`, `- ${{ if … }}:`), or a top-level `extends` with a `template`.
/// Other CI systems' files are not: GitHub Actions' `jobs` is a mapping, GitLab's `stages` a
/// list of names. `truncated`: the text is a prefix, so its last line may be cut.
pub fn looks_like_pipeline(text: &str, truncated: bool) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    if truncated {
        lines.pop();
    }
    let content = |l: &&&str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    for (i, line) in lines.iter().enumerate() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let key = key.trim_end().trim_matches(['"', '\'']);
        if line.starts_with([' ', '\t', '-', '#']) || !matches!(key, "steps" | "jobs" | "stages" | "extends") {
            continue;
        }
        let rest = rest.split(" #").next().unwrap_or("").trim();
        if !rest.is_empty() {
            // Flow style: `steps: [{task: …}]`; `extends: {template: …}`.
            if rest.starts_with("[{") || rest.starts_with("[ {") || (key == "extends" && rest.contains("template")) {
                return true;
            }
            continue;
        }
        let looks = if key == "extends" {
            lines[i + 1..].iter().find(content).is_some_and(|next| {
                let item = next.trim_start();
                next.len() > item.len() && (item.starts_with("template:") || item.starts_with("${{"))
            })
        } else {
            first_item_is_azure(key, &lines[i + 1..])
        };
        if looks {
            return true;
        }
    }
    false
}

/// Whether the first item of a block list under `list` (`steps`, `jobs`, `stages`) is an
/// Azure Pipelines step, job or stage: a `${{ }}` insertion, or a mapping with one of the
/// keys that make one (`task`, `script`, `job`, `stage`, `template`, …) at its own level.
/// Other CI systems' lists have other keys: Drone's and Cloud Build's `- name:`/`image:`,
/// Buildkite's `- label:`/`command:`.
fn first_item_is_azure(list: &str, rest: &[&str]) -> bool {
    let kinds: &[&str] = match list {
        "steps" => azp_preflight_scan::STEP_KINDS,
        "jobs" => &["job", "deployment", "template"],
        _ => &["stage", "template"],
    };
    let mut lines = rest.iter().filter(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    let Some(first) = lines.next() else { return false };
    let dash = first.len() - first.trim_start().len();
    let Some(after) = first.trim_start().strip_prefix('-') else { return false };
    let body = after.trim_start();
    if body.starts_with("${{") {
        return true;
    }
    // Where the item's keys start: after `- ` on the first line.
    let level = first.len() - body.len();
    let mut keys = vec![mapping_key(body)];
    for line in lines {
        let indent = line.len() - line.trim_start().len();
        if indent <= dash {
            break;
        }
        if indent == level {
            keys.push(mapping_key(line.trim_start()));
        }
    }
    keys.into_iter().flatten().any(|k| kinds.contains(&k))
}

/// The key of a line that starts a mapping entry (`task: …`), not of a scalar that happens to
/// hold a colon (`"a: b"`, `http://x`).
fn mapping_key(line: &str) -> Option<&str> {
    let (key, value) = line.split_once(':')?;
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (plain && (value.is_empty() || value.starts_with([' ', '\t']))).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_and_templates_are_told_by_their_top_level_keys() {
        let yes = [
            "steps:\n- task: Docker@2\n",
            "trigger: none\njobs:\n  - job: A\n",
            "\u{feff}# c\r\nstages:\r\n\r\n# between\r\n- stage: S\r\n",
            "parameters:\n- name: x\nsteps:\n- ${{ each s in parameters.steps }}:\n  - ${{ s }}\n",
            "steps:\n- template: a.yml\n",
            "extends:\n  template: /main.yml@self\n",
            "extends:\n  ${{ if true }}:\n    template: a.yml\n",
            "steps: [{task: A@1}]\n",
            "'jobs':\n- job: A\n",
            "steps:\n- displayName: Build\n  condition: always()\n  task: A@1\n",
            "jobs:\n  # the build\n  - deployment: D\n",
            "stages:\n- stage: S\n",
        ];
        for text in yes {
            assert!(looks_like_pipeline(text, false), "{text:?}");
        }
        let no = [
            "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n",
            "stages:\n  - build\n  - test\n",
            "stages:\n- \"a: b\"\n- http://x\n",
            "apiVersion: v1\nkind: Pod\nspec:\n  steps:\n  - task: A@1\n",
            "variables:\n  a: 1\n",
            "steps: []\n",
            "# steps:\n# - task: A@1\n",
            "extends: base.yml\n",
            "",
            // Drone, Cloud Build and Buildkite lists of steps.
            "kind: pipeline\nsteps:\n- name: build\n  image: golang\n  commands:\n  - go test\n",
            "steps:\n- name: gcr.io/cloud-builders/docker\n  args: ['build', '.']\n",
            "steps:\n  - label: test\n    command: make test\n    plugins:\n      - docker#v5:\n          task: x\n",
            "jobs:\n- name: a\n  steps:\n  - task: A@1\n",
        ];
        for text in no {
            assert!(!looks_like_pipeline(text, false), "{text:?}");
        }
        // A prefix cut in the middle of the line that would decide is not trusted.
        assert!(!looks_like_pipeline("steps:\n- task: A", true));
        assert!(looks_like_pipeline("steps:\n- task: A@1\n- scr", true));
    }
}
