import tarfile, io, os, gzip, hashlib, json, sys
out = sys.argv[1]; tag = sys.argv[2]; seed = int(sys.argv[3])
layers = []
diff_ids = []
for i in range(5):
    s = seed if i == 4 else 0
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        import random
        r = random.Random(i * 1000 + s)
        for j in range(20):
            data = r.randbytes(1 << 20)
            ti = tarfile.TarInfo(f"layer{i}/file{j}"); ti.size = len(data); ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    layers.append(gzip.compress(raw, compresslevel=1, mtime=0))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
man = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": [f"l{i}.tar.gz" for i in range(5)]}]).encode()
with tarfile.open(out, "w") as t:
    for name, data in [("config.json", cfg)] + [(f"l{i}.tar.gz", l) for i, l in enumerate(layers)] + [("manifest.json", man)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
