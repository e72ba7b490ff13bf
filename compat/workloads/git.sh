# compat: git: init, add, commit, log, diff, branches and a three-way merge, with fixed dates and identity so hashes are deterministic
# packages: git,sed,grep,tar,dash
# quick: yes
# timeout: 180
set -eu
export GIT_AUTHOR_DATE='2024-01-02T03:04:05Z' GIT_COMMITTER_DATE='2024-01-02T03:04:05Z'
export GIT_CONFIG_NOSYSTEM=1
git config --global user.name 'Compat Tester'
git config --global user.email 'compat@example.org'
git config --global init.defaultBranch main
git config --global core.pager cat
git --version | cut -d' ' -f1-2 | sed 's/\.[0-9]*$//'
# The repository lives in /tmp (its index records inode numbers and times); /out gets what is deterministic.
mkdir -p /tmp/g && cd /tmp/g
git init -q repo
cd repo
printf 'line 1\nline 2\nline 3\n' > a.txt
mkdir -p src
for i in $(seq 1 20); do echo "int f$i(void) { return $i; }" > src/f$i.c; done
git add .
git commit -q -m 'first commit'
git rev-parse HEAD
echo 'line 4' >> a.txt
git mv src/f1.c src/one.c
git rm -q src/f2.c
git status --short
git commit -q -am 'second: edit, rename, remove'
git log --oneline
git diff HEAD~1 --stat
git diff HEAD~1 -- a.txt
git checkout -q -b feature
sed -i 's/line 1/LINE ONE/' a.txt
echo 'feature file' > feature.txt
git add a.txt feature.txt
GIT_AUTHOR_DATE='2024-01-03T00:00:00Z' GIT_COMMITTER_DATE='2024-01-03T00:00:00Z' git commit -q -m 'feature work'
git checkout -q main
echo 'line 5' >> a.txt
GIT_AUTHOR_DATE='2024-01-04T00:00:00Z' GIT_COMMITTER_DATE='2024-01-04T00:00:00Z' git commit -q -am 'main work'
GIT_AUTHOR_DATE='2024-01-05T00:00:00Z' GIT_COMMITTER_DATE='2024-01-05T00:00:00Z' git merge -q --no-edit feature
cat a.txt
git log --graph --oneline --all
git show --stat --format='%H %an <%ae> %ad %s' HEAD | head -8
git cat-file -p HEAD | head -4
git branch -a
git tag -a v1 -m 'release one'
git describe
git gc -q 2>/dev/null
git count-objects -v | grep -E '^(count|in-pack|packs)'
git fsck --no-progress 2>&1 | grep -v '^Checking' || true
git log --format='%H %s' > /out/log.txt
git format-patch -q -o /out/patches HEAD~2..HEAD~1 && ls /out/patches
git archive --format=tar HEAD | tar -t | sort | head -5
cd ..
git clone -q repo clone
git -C clone log --oneline | wc -l
echo "exit $?"
