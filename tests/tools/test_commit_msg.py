"""tools/commit-msg refuses a subject over 72 characters and takes one of 72:
run on message files as git runs it, and installed in a throw-away repository
where `git commit` must fail with the hook's message for a long subject and
record a short one."""
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get('RV_SOURCE', os.path.join(HERE, '..', '..')))
HOOK = os.path.join(SOURCE, 'tools', 'commit-msg')


class Hook(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='rv-commit-msg-')
        self.addCleanup(shutil.rmtree, self.dir)

    def run_hook(self, text):
        path = os.path.join(self.dir, 'COMMIT_EDITMSG')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        # outside any repository: core.commentChar falls back to '#'
        return subprocess.run([HOOK, path], cwd=self.dir, capture_output=True, text=True, timeout=30)

    def assert_taken(self, text):
        r = self.run_hook(text)
        self.assertEqual(r.returncode, 0, 'refused %r: %s' % (text, r.stderr))
        self.assertEqual(r.stderr, '')

    def assert_refused(self, text, length):
        r = self.run_hook(text)
        self.assertEqual(r.returncode, 1, 'took %r' % text)
        self.assertIn('the subject is %d characters, the most is 72' % length, r.stderr)
        return r.stderr

    def test_72_taken_73_refused(self):
        self.assert_taken('a' * 72 + '\n\n' + 'b' * 200 + '\n')
        err = self.assert_refused('a' * 73 + '\n\nbody\n', 73)
        self.assertIn('a' * 73, err)
        self.assertIn('in the body', err)

    def test_comments_and_leading_blank_lines_do_not_count(self):
        self.assert_taken('\n\n# ' + 'c' * 100 + '\nShort subject\n\n# more\n')
        self.assert_refused('# a comment\n\n' + 'x' * 80 + '\n', 80)

    def test_wrapped_subject_counts_whole(self):
        err = self.assert_refused('a' * 40 + '\n' + 'b' * 40 + '\n\nbody\n', 81)
        self.assertIn('2 lines here', err)

    def test_characters_not_bytes(self):
        self.assert_taken('\u00e9' * 72 + '\n')
        self.assert_refused('\u00e9' * 73 + '\n', 73)

    def test_diff_below_scissors_is_not_the_message(self):
        self.assert_taken('# ------------------------ >8 ------------------------\n'
                          'diff --git a/x b/x ' + 'd' * 100 + '\n')

    def test_unreadable_file_named(self):
        missing = os.path.join(self.dir, 'nothing-here')
        r = subprocess.run([HOOK, missing], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn('cannot read the message file ' + missing, r.stderr)

    def test_in_a_repository(self):
        git = shutil.which('git')
        self.assertIsNotNone(git, 'git not found: install the Debian package git')
        repo = os.path.join(self.dir, 'repo')
        env = dict(os.environ, GIT_CONFIG_GLOBAL='/dev/null', GIT_CONFIG_NOSYSTEM='1',
                   GIT_AUTHOR_NAME='t', GIT_AUTHOR_EMAIL='t@example.org',
                   GIT_COMMITTER_NAME='t', GIT_COMMITTER_EMAIL='t@example.org')

        def git_run(*args):
            return subprocess.run([git, '-C', repo] + list(args), env=env, capture_output=True, text=True,
                                  timeout=60)

        subprocess.run([git, 'init', '-q', repo], env=env, check=True, timeout=60)
        hooks = git_run('rev-parse', '--git-path', 'hooks').stdout.strip()
        hooks = os.path.join(repo, hooks)
        os.makedirs(hooks, exist_ok=True)
        os.symlink(HOOK, os.path.join(hooks, 'commit-msg'))

        long_subject = 'Change ' + 'x' * 70
        r = git_run('commit', '-q', '--allow-empty', '-m', long_subject, '-m', 'body')
        self.assertNotEqual(r.returncode, 0, 'git took a 77-character subject')
        self.assertIn('the subject is 77 characters', r.stderr)
        self.assertNotEqual(git_run('rev-parse', '-q', '--verify', 'HEAD').returncode, 0,
                            'a commit was recorded')

        r = git_run('commit', '-q', '--allow-empty', '-m', 'Short subject', '-m', 'x' * 200)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(git_run('log', '--format=%s').stdout, 'Short subject\n')


if __name__ == '__main__':
    unittest.main()
