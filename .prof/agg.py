import sys, collections, re
path = sys.argv[1]; pat = sys.argv[2] if len(sys.argv) > 2 else None
incl = collections.Counter(); self_ = collections.Counter(); total = 0
for line in open(path):
    stack, _, n = line.rstrip().rpartition(' ')
    n = int(n); frames = stack.split(';')
    if pat and not any(re.search(pat, f) for f in frames): continue
    total += n
    def norm(f): return re.sub(r':\d+\)', ')', f)
    seen = set()
    for f in frames:
        f = norm(f)
        if f not in seen: incl[f] += n; seen.add(f)
    self_[norm(frames[-1])] += n
print('total', total)
print('--- inclusive')
for f, n in incl.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 60): print(f'{n:6d} {100*n/total:5.1f}% {f}')
print('--- self')
for f, n in self_.most_common(40): print(f'{n:6d} {100*n/total:5.1f}% {f}')
