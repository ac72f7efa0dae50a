# Writes the hand-written seeds of FuzzStitch in go test's corpus format.
# Run: python3 graph/testdata/fuzz/seeds.py
import os
U1,U2,U3,EA,EB,ENONE,A1,A2,AU1,D1,D2,C1,C2,L1=range(14)
MATCH,TIGHT,GUARDS,BULK=1,2,4,128
FLUSH,REDELIVER,APPROVE,REJECT,LINK,SPLIT,UNDOMERGE,UNDOSPLIT,REMATCH=8,9,10,11,12,13,14,15,16
REAL,DRY=0,1
JON80,JON90,JANE,ANN=1,2,3,4
def obs(ids, person=0, minute=0, prev=None):
    flags=(minute<<4)|(person<<1)|(1 if prev is not None else 0)
    out=[0,len(ids)-1]+ids+[flags]
    if prev is not None: out.append(prev)
    return out
def quote(b):
    s='"'
    for c in b:
        ch=chr(c)
        if ch in '"\\': s+='\\'+ch
        elif 32<=c<127: s+=ch
        else: s+='\\x%02x'%c
    return s+'"'
seeds={
 # The reproducer: a returning user identifies on a new device; his
 # profile's anchor (the laptop) is not in the message; a placeholder email
 # on two people; matching on, user IDs limited to one a profile.
 'reproducer-returning-user-new-device': [MATCH|TIGHT]+obs([U1,A1,ENONE],JANE,0)+[FLUSH]+obs([A2],0,1)+[FLUSH]+obs([U2,A2,ENONE],JON80,2)+[FLUSH]+obs([U2,AU1,ENONE],JON80,3)+[FLUSH],
 # Exact stitching, limits too large to matter: a chain joined out of
 # order across batches, with redeliveries inside and across batches.
 'exact-chain-out-of-order': [0]+obs([U1,A1],0,9)+obs([A1,D1],0,3)+[REDELIVER,0,FLUSH]+obs([D1,EA],0,1)+[REDELIVER,1]+obs([EA,C1,L1],0,0)+[FLUSH]+obs([U2,A2])+obs([A2,D2,EB])+[FLUSH],
 # Merge protection and a hub: d1 seen with three strong identifiers.
 'limits-and-hub': [TIGHT]+obs([U1,D1,EA])+obs([U2,D1,EB])+[FLUSH]+obs([C1,D1,A1])+obs([U1,EB,ENONE])+obs([U1,A1,A2,AU1])+[FLUSH],
 # Aliases: previousId takes the stored type, a user ID first.
 'alias-chain': [TIGHT]+obs([A1],prev=3)+obs([U1,A2])+[FLUSH]+obs([U2],prev=0)+obs([U3],prev=4)+obs([AU1,D1],prev=1)+[FLUSH],
 # Matching: an accepted match, a review pair approved then the merge
 # undone, a split and its undo.
 'matching-approve-undo-split': [MATCH]+obs([C1],JON80)+obs([A1],JON80,1)+obs([C2],JANE,2)+[FLUSH,APPROVE,0,DRY,APPROVE,0,REAL,UNDOMERGE,0,DRY,UNDOMERGE,0,REAL]+obs([C2,EA],JANE,4)+[SPLIT,0,1,REAL,UNDOSPLIT,0,DRY,UNDOSPLIT,0,REAL,SPLIT,1,3,DRY,REMATCH,0,DRY,REMATCH,1,REAL,FLUSH],
 # A steward rejects a review pair; the same people are seen again, and
 # matched under tight guards (chaining guard, oversized blocks).
 'reject-then-seen-again': [MATCH|TIGHT|GUARDS]+obs([U1,A1],JON80)+obs([U2,A2],JON90,1)+[FLUSH,REJECT,0,DRY,REJECT,0,REAL]+obs([U2,A2],JON80,5)+obs([C1,D1],JANE,6)+obs([C2],JON80,7)+[FLUSH,APPROVE,0,REAL,UNDOMERGE,1,REAL,REDELIVER,2,FLUSH,REMATCH,2,REAL],
 # Link joins what was never seen together; undo the link's merge, split,
 # link again.
 # Bulk links (BULK turns REMATCH into a bulk pass's links: a count-1
 # byte, then per link two identifier picks and a flags byte: bit 0 join,
 # bits 1-2 the score, bit 3 held by the cluster guard): joins, a held
 # pair, one across merge protection; planned, applied, a reject, applied
 # again, a merge undone.
 'bulk-links-guards': [MATCH|TIGHT|BULK]+obs([C1],JON80)+obs([C2],JON80,1)+obs([U1,A1],JANE,2)+obs([U2,A2],JANE,3)+[FLUSH,
   REMATCH,3,0,1,1,2,3,1,4,5,9,1,4,4,DRY, REMATCH,3,0,1,1,2,3,1,4,5,9,1,4,4,REAL, REJECT,0,REAL,
   REMATCH,3,0,1,1,2,3,1,4,5,9,1,4,4,REAL, UNDOMERGE,0,REAL]+obs([C1,D1],JON80,5)+[FLUSH],
 'link-undo': [MATCH|TIGHT]+obs([U1,EA])+obs([U2,EB],ANN)+obs([U3,ENONE],ANN)+[LINK,0,7,DRY,LINK,0,7,REAL,UNDOMERGE,0,REAL,SPLIT,0,255,REAL,LINK,1,2,REAL,UNDOSPLIT,0,REAL]+obs([U1,EB])+[FLUSH],
}
d=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'FuzzStitch')
for name,b in seeds.items():
    assert all(0<=c<256 for c in b)
    # Opcodes are taken modulo 17 (numOps in fuzz_test.go).
    open(os.path.join(d,name),'w').write('go test fuzz v1\n[]byte(%s)\n'%quote(b))
