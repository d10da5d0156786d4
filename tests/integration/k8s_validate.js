// Reads a JSON array of Kubernetes objects on stdin and prints a JSON array with one entry per
// object: "" when it validates against the Kubernetes OpenAPI schema, else the error text.
// The schemas and the validator are those of the kubernetes-models npm packages.
"use strict";
const kinds = {
  "v1/Pod": () => require("kubernetes-models/v1").Pod,
  "apps/v1/Deployment": () => require("kubernetes-models/apps/v1").Deployment,
  "apps/v1/StatefulSet": () => require("kubernetes-models/apps/v1").StatefulSet,
  "apps/v1/DaemonSet": () => require("kubernetes-models/apps/v1").DaemonSet,
  "apps/v1/ReplicaSet": () => require("kubernetes-models/apps/v1").ReplicaSet,
  "batch/v1/Job": () => require("kubernetes-models/batch/v1").Job,
  "batch/v1/CronJob": () => require("kubernetes-models/batch/v1").CronJob,
  "v1/Service": () => require("kubernetes-models/v1").Service,
  "v1/ServiceAccount": () => require("kubernetes-models/v1").ServiceAccount,
  "v1/Secret": () => require("kubernetes-models/v1").Secret,
  "v1/ConfigMap": () => require("kubernetes-models/v1").ConfigMap,
  "policy/v1/PodDisruptionBudget": () => require("kubernetes-models/policy/v1").PodDisruptionBudget,
  "rbac.authorization.k8s.io/v1/ClusterRole": () =>
      require("kubernetes-models/rbac.authorization.k8s.io/v1").ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": () =>
      require("kubernetes-models/rbac.authorization.k8s.io/v1").ClusterRoleBinding,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": () =>
      require("kubernetes-models/admissionregistration.k8s.io/v1").MutatingWebhookConfiguration,
};
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((obj) => {
    const make = kinds[`${obj.apiVersion}/${obj.kind}`];
    if (!make) return `no schema for ${obj.apiVersion}/${obj.kind}`;
    try {
      new (make())(obj).validate();
      return "";
    } catch (e) {
      return String(e.message || e);
    }
  });
  process.stdout.write(JSON.stringify(out));
});
