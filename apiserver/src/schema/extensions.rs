//! Kubernetes' OpenAPI extensions for the served types, one row per (definition, field).
//!
//! k8s-openapi's schemas carry no `x-kubernetes-*` extensions, but kubectl and Kubernetes'
//! patch and apply machinery read them, so the values here are Kubernetes' own: taken from
//! the Go struct tags (`patchStrategy`, `patchMergeKey`) and markers (`+listType`,
//! `+listMapKey`, `+mapType`, `+structType`, `+default` of list-map keys) in k8s.io/api and
//! k8s.io/apimachinery v0.33 (Kubernetes 1.33, the version k8s-openapi's `v1_33` feature
//! mirrors), and checked against the published api/openapi-spec. Inline (embedded) structs
//! are flattened into the embedding definition as the OpenAPI generator does.
//!
//! Only definitions reachable from a served kind appear; a schema test fails if a row names a
//! definition or field the generated schemas lack.

use serde_json::{json, Map, Value};

/// The extensions of one property of one definition ("" = not set).
#[derive(Debug)]
pub struct FieldExtensions {
    pub definition: &'static str,
    pub field: &'static str,
    /// `x-kubernetes-patch-strategy`: "merge", "retainKeys", "merge,retainKeys" or "replace".
    pub patch_strategy: &'static str,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: &'static str,
    /// `x-kubernetes-list-type`: "atomic", "set" or "map".
    pub list_type: &'static str,
    /// `x-kubernetes-list-map-keys` (list type "map" only).
    pub list_map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type`: "atomic" or "granular".
    pub map_type: &'static str,
}

impl FieldExtensions {
    /// Writes the set extensions into the property's schema.
    pub fn write(&self, prop: &mut Map<String, Value>) {
        let pairs = [
            ("x-kubernetes-patch-strategy", self.patch_strategy),
            ("x-kubernetes-patch-merge-key", self.merge_key),
            ("x-kubernetes-list-type", self.list_type),
            ("x-kubernetes-map-type", self.map_type),
        ];
        for (key, value) in pairs {
            if !value.is_empty() {
                prop.insert(key.into(), json!(value));
            }
        }
        if !self.list_map_keys.is_empty() {
            prop.insert(
                "x-kubernetes-list-map-keys".into(),
                json!(self.list_map_keys),
            );
        }
    }
}

const fn row(
    definition: &'static str,
    field: &'static str,
    patch_strategy: &'static str,
    merge_key: &'static str,
    list_type: &'static str,
    list_map_keys: &'static [&'static str],
    map_type: &'static str,
) -> FieldExtensions {
    FieldExtensions {
        definition,
        field,
        patch_strategy,
        merge_key,
        list_type,
        list_map_keys,
        map_type,
    }
}

/// Field extensions: definition, field, patch strategy, merge key, list type, list map keys,
/// map type.
#[rustfmt::skip]
pub static FIELD_EXTENSIONS: &[FieldExtensions] = &[
    row("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "accessModes", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.RBDVolumeSource", "monitors", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.CephFSVolumeSource", "monitors", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.SecretVolumeSource", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.SecretProjection", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ISCSIVolumeSource", "portals", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.FCVolumeSource", "targetWWNs", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.FCVolumeSource", "wwids", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ConfigMapVolumeSource", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ConfigMapProjection", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ProjectedVolumeSource", "sources", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.HTTPGetAction", "httpHeaders", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ExecAction", "command", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Capabilities", "add", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Capabilities", "drop", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ResourceRequirements", "claims", "", "", "map", &["name"], ""),
    row("io.k8s.api.core.v1.Container", "command", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Container", "args", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Container", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    row("io.k8s.api.core.v1.Container", "envFrom", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Container", "env", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.Container", "resizePolicy", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Container", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    row("io.k8s.api.core.v1.Container", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
    row("io.k8s.api.core.v1.ContainerStatus", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    row("io.k8s.api.core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.ResourceStatus", "resources", "", "", "map", &["resourceID"], ""),
    row("io.k8s.api.core.v1.LinuxContainerUser", "supplementalGroups", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeSelector", "nodeSelectorTerms", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeSelectorTerm", "matchExpressions", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeSelectorTerm", "matchFields", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeSelectorRequirement", "values", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAffinityTerm", "namespaces", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAffinityTerm", "matchLabelKeys", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodAffinityTerm", "mismatchLabelKeys", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodSpec", "volumes", "merge,retainKeys", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "initContainers", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "containers", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "ephemeralContainers", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "nodeSelector", "", "", "", &[], "atomic"),
    row("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "tolerations", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodSpec", "hostAliases", "merge", "ip", "map", &["ip"], ""),
    row("io.k8s.api.core.v1.PodSpec", "readinessGates", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey", "map", &["topologyKey", "whenUnsatisfiable"], ""),
    row("io.k8s.api.core.v1.PodSpec", "schedulingGates", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.PodSpec", "resourceClaims", "merge,retainKeys", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.TopologySpreadConstraint", "matchLabelKeys", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.HostAlias", "hostnames", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodSecurityContext", "supplementalGroups", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodSecurityContext", "sysctls", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodDNSConfig", "nameservers", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodDNSConfig", "searches", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodDNSConfig", "options", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.core.v1.PodStatus", "hostIPs", "merge", "ip", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodStatus", "podIPs", "merge", "ip", "map", &["ip"], ""),
    row("io.k8s.api.core.v1.PodStatus", "initContainerStatuses", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodStatus", "containerStatuses", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodStatus", "ephemeralContainerStatuses", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.ServiceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.core.v1.LoadBalancerStatus", "ingress", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.LoadBalancerIngress", "ports", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", "port", "map", &["port", "protocol"], ""),
    row("io.k8s.api.core.v1.ServiceSpec", "selector", "", "", "", &[], "atomic"),
    row("io.k8s.api.core.v1.ServiceSpec", "clusterIPs", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ServiceSpec", "externalIPs", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ServiceSpec", "loadBalancerSourceRanges", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ServiceSpec", "ipFamilies", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ServiceAccount", "secrets", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.ServiceAccount", "imagePullSecrets", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.Endpoints", "subsets", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EndpointSubset", "addresses", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EndpointSubset", "notReadyAddresses", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EndpointSubset", "ports", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", "", "set", &[], ""),
    row("io.k8s.api.core.v1.NodeSpec", "taints", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.core.v1.NodeStatus", "addresses", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.core.v1.NodeStatus", "images", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeStatus", "volumesInUse", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeStatus", "volumesAttached", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NodeStatus", "runtimeHandlers", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.ContainerImage", "names", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NamespaceSpec", "finalizers", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.NamespaceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.core.v1.DownwardAPIVolumeSource", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.DownwardAPIProjection", "items", "", "", "atomic", &[], ""),
    row("io.k8s.api.apps.v1.DeploymentSpec", "strategy", "retainKeys", "", "", &[], ""),
    row("io.k8s.api.apps.v1.DeploymentStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.apps.v1.ReplicaSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    row("io.k8s.api.rbac.v1.PolicyRule", "verbs", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.PolicyRule", "apiGroups", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.PolicyRule", "resources", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.PolicyRule", "resourceNames", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.PolicyRule", "nonResourceURLs", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.Role", "rules", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.RoleBinding", "subjects", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.ClusterRole", "rules", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.AggregationRule", "clusterRoleSelectors", "", "", "atomic", &[], ""),
    row("io.k8s.api.rbac.v1.ClusterRoleBinding", "subjects", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "ownerReferences", "merge", "uid", "map", &["uid"], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", "merge", "", "set", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "managedFields", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "dryRun", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "details", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails", "causes", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions", "versions", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions", "serverAddressByClientCIDRs", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList", "groups", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup", "versions", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup", "serverAddressByClientCIDRs", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource", "shortNames", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource", "categories", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList", "resources", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", "matchExpressions", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "values", "", "", "atomic", &[], ""),
    row("io.k8s.apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement", "values", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "command", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "args", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "envFrom", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "env", "merge", "name", "map", &["name"], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "resizePolicy", "", "", "atomic", &[], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    row("io.k8s.api.core.v1.EphemeralContainer", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
];

/// Definition-level extensions (`+structType=atomic` on the Go type): definition, key, value.
#[rustfmt::skip]
pub static TYPE_EXTENSIONS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ObjectFieldSelector", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.ResourceFieldSelector", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.ConfigMapKeySelector", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.SecretKeySelector", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.NodeSelector", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.NodeSelectorTerm", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.EndpointAddress", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.EndpointPort", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.ObjectReference", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.LocalObjectReference", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.core.v1.TypedLocalObjectReference", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.rbac.v1.Subject", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.api.rbac.v1.RoleRef", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "x-kubernetes-map-type", "atomic"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", "x-kubernetes-map-type", "atomic"),
];

/// Defaults of list-map key fields (`+default`), which upstream publishes as the property's
/// `default` and server-side apply uses for items that omit the key: definition, field,
/// default (JSON).
#[rustfmt::skip]
pub static KEY_DEFAULTS: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "\"TCP\""),
    ("io.k8s.api.core.v1.LocalObjectReference", "name", "\"\""),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "\"TCP\""),
];
