#!/usr/bin/env python3
"""Writes a cluster-info dump of one Deployment with N crash-looping (OOMKilled) pods of its
own, each with a BackOff event: the workload whose cost grows with the target's own pods.

    python3 benches/own_pods_dump.py 4000 /tmp/own4000
    kubectl metakube diagnose deploy/big -n shop --from-dump /tmp/own4000 --no-llm -o json
"""
import json, os, sys
N=int(sys.argv[1]); out=sys.argv[2]
ns='shop'
os.makedirs(f'{out}/{ns}', exist_ok=True)
def lst(kind, items): return {"kind":kind+"List","apiVersion":"v1","metadata":{"resourceVersion":""},"items":items}
node={"metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}},"spec":{},"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastTransitionTime":"2025-01-01T00:00:00Z"}],"allocatable":{"cpu":"64","memory":"256Gi","pods":"110000"},"capacity":{"cpu":"64","memory":"256Gi","pods":"110000"}}}
json.dump(lst("Node",[node]), open(f'{out}/nodes.json','w'))
dep={"metadata":{"name":"big","namespace":ns,"uid":"d1","generation":1},"spec":{"replicas":N,"selector":{"matchLabels":{"app":"big"}},"template":{"metadata":{"labels":{"app":"big"}},"spec":{"containers":[{"name":"app","image":"acme/big:1","resources":{"limits":{"memory":"64Mi"}}}]}}},"status":{"replicas":N,"availableReplicas":0,"unavailableReplicas":N,"observedGeneration":1,"conditions":[{"type":"Available","status":"False","reason":"MinimumReplicasUnavailable","message":"Deployment does not have minimum availability."}]}}
rs={"metadata":{"name":"big-5d8f","namespace":ns,"uid":"r1","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"big","uid":"d1","controller":True}],"labels":{"app":"big"}},"spec":{"replicas":N,"selector":{"matchLabels":{"app":"big"}},"template":dep["spec"]["template"]},"status":{"replicas":N}}
pods=[];events=[]
for i in range(N):
    name=f"big-5d8f-{i:05d}"
    pods.append({"metadata":{"name":name,"namespace":ns,"uid":f"p{i}","labels":{"app":"big"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"big-5d8f","uid":"r1","controller":True}]},
      "spec":{"nodeName":"n1","containers":[{"name":"app","image":"acme/big:1","resources":{"limits":{"memory":"64Mi"}}}]},
      "status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],"containerStatuses":[{"name":"app","ready":False,"restartCount":7,"image":"acme/big:1","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container"}},"lastState":{"terminated":{"reason":"OOMKilled","exitCode":137,"startedAt":"2025-11-12T10:29:50Z","finishedAt":"2025-11-12T10:29:52Z"}}}]}})
    events.append({"metadata":{"name":name+".1","namespace":ns},"involvedObject":{"kind":"Pod","name":name,"namespace":ns,"uid":f"p{i}"},"reason":"BackOff","message":"Back-off restarting failed container app in pod "+name,"type":"Warning","count":20,"firstTimestamp":"2025-11-12T10:00:00Z","lastTimestamp":"2025-11-12T10:29:59Z"})
json.dump(lst("Deployment",[dep]), open(f'{out}/{ns}/deployments.json','w'))
json.dump(lst("ReplicaSet",[rs]), open(f'{out}/{ns}/replicasets.json','w'))
json.dump(lst("Pod",pods), open(f'{out}/{ns}/pods.json','w'))
json.dump(lst("Event",events), open(f'{out}/{ns}/events.json','w'))
for k in ["services","daemonsets","replication-controllers"]:
    json.dump(lst("X",[]), open(f'{out}/{ns}/{k}.json','w'))
os.makedirs(f'{out}/default', exist_ok=True)
for k in ["events","services","daemonsets","deployments","replicasets","pods","replication-controllers"]:
    json.dump(lst("X",[]), open(f'{out}/default/{k}.json','w'))
