"""Probe: in a rendered scene, how well the model matches a person's crops
across segments and cameras (averaged features, ground-truth boxes). Usage:
  .venv/bin/python training/scripts/scene_probe.py SCENE_DIR MODEL.onnx|RUN/last.pt [SHEET.png]
"""
# Quick probe: in a demo scene, how well does the model match a person's night
# thermal crops to day thermal (T->T) vs to day RGB (T->V)?
import json, sys, collections, numpy as np, cv2, onnxruntime as ort
scene, model = sys.argv[1], sys.argv[2]
gt = [json.loads(l) for l in open(scene + '/ground_truth.jsonl')]
want = collections.defaultdict(list)
for g in gt:
    if g['visible'] >= 0.9 and g['bbox'][3] > 120 and g['frame'] % 5 == 0:
        want[(g['camera'], g['frame'])].append(g)
crops = collections.defaultdict(list)  # (camera, segment, pid) -> list of crops
for cam in ['rgb', 'thermal']:
    cap = cv2.VideoCapture(scene + f'/{cam}.mp4'); f = 0
    while True:
        ok, im = cap.read()
        if not ok: break
        for g in want.get((cam, f), []):
            x, y, w, h = [int(round(v)) for v in g['bbox']]
            c = im[max(y,0):y+h, max(x,0):x+w]
            if c.size: crops[(cam, g['segment'], g['person_id'])].append(c)
        f += 1
mean = np.array([0.485,0.456,0.406],np.float32); std=np.array([0.229,0.224,0.225],np.float32)
if model.endswith('.pt'):  # a training checkpoint (vireid_train), run in PyTorch
    import torch
    from vireid_train.train import load_checkpoint
    net, _ = load_checkpoint(model)
    def run(x, mod):
        with torch.no_grad():
            return net(torch.from_numpy(x), mod)['bn'].numpy()
else:
    s = ort.InferenceSession(model)
    def run(x, mod):
        return s.run(None, {'images': x, 'modality': np.full(len(x), mod, np.float32)})[0]
def emb(cs, mod):
    x = np.stack([(cv2.resize(cv2.cvtColor(c, cv2.COLOR_BGR2RGB), (32, 64)).astype(np.float32)/255 - mean)/std for c in cs]).transpose(0,3,1,2)
    f = run(x, mod)
    f = f / np.linalg.norm(f, axis=1, keepdims=True); m = f.mean(0); return m/np.linalg.norm(m)
feats = {k: emb(v, 0 if k[0]=='rgb' else 1) for k, v in crops.items() if len(v) >= 2}
pids = sorted({k[2] for k in feats})
for qk, gk in [(('rgb','night'),('rgb','day')), (('thermal','night'),('thermal','day')), (('thermal','night'),('rgb','day')), (('rgb','day'),('thermal','day'))]:
    hits = 0; n = 0; sims=[]
    for p in pids:
        q = feats.get(qk + (p,))
        if q is None: continue
        g = {pp: feats[gk + (pp,)] for pp in pids if gk + (pp,) in feats}
        sc = {pp: float(q @ v) for pp, v in g.items()}
        best = max(sc, key=sc.get); hits += best == p; n += 1
        sims.append((p, round(sc.get(p, -9), 3), round(max(v for pp, v in sc.items() if pp != p), 3) if len(sc)>1 else None))
    print(qk, '->', gk, f'R1 {hits}/{n}', sims)
if len(sys.argv) > 3:
    rows = []
    for p in pids:
        row = []
        for k in [('rgb','day'),('thermal','day'),('thermal','night'),('rgb','night')]:
            for c in crops.get(k+(p,), [])[::7][:3]:
                row.append(cv2.resize(c, (48, 96)))
        rows.append(np.hstack(row + [np.zeros((96,48,3),np.uint8)]*(12-len(row)))[:, :48*12])
    cv2.imwrite(sys.argv[3], np.vstack(rows))
