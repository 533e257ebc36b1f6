/**
 * The fixed catalog the Hetzner emulator serves: locations, server types and system images,
 * in the shapes of hcloud-go v2.44 `hcloud/schema/{location,server_type,image}.go` (the
 * version the hcloud provider's user agent reported, environment-notes.md).
 *
 * Availability follows Hetzner's documented per-location server types (changelog
 * 2025-09-24): CX (cx23/cx33/cx43/cx53) and CAX (Arm) exist only in the EU locations
 * fsn1, nbg1, hel1; CPX and CCX everywhere. The retired cx22/cx32/cx42 are not in the
 * catalog at all (removed January 2026), so they answer "not found" as the real API does.
 */

export interface Location {
  id: number;
  name: string;
  description: string;
  country: string;
  city: string;
  latitude: number;
  longitude: number;
  network_zone: string;
}

export const LOCATIONS: readonly Location[] = [
  { id: 1, name: "fsn1", description: "Falkenstein DC Park 1", country: "DE", city: "Falkenstein", latitude: 50.47612, longitude: 12.370071, network_zone: "eu-central" },
  { id: 2, name: "nbg1", description: "Nuremberg DC Park 1", country: "DE", city: "Nuremberg", latitude: 49.452102, longitude: 11.076665, network_zone: "eu-central" },
  { id: 3, name: "hel1", description: "Helsinki DC Park 1", country: "FI", city: "Helsinki", latitude: 60.169855, longitude: 24.938379, network_zone: "eu-central" },
  { id: 4, name: "ash", description: "Ashburn, VA", country: "US", city: "Ashburn, VA", latitude: 39.045821, longitude: -77.487073, network_zone: "us-east" },
  { id: 5, name: "hil", description: "Hillsboro, OR", country: "US", city: "Hillsboro, OR", latitude: 45.54222, longitude: -122.951924, network_zone: "us-west" },
  { id: 6, name: "sin", description: "Singapore", country: "SG", city: "Singapore", latitude: 1.283333, longitude: 103.833333, network_zone: "ap-southeast" },
];

const EU = ["fsn1", "nbg1", "hel1"];
const ALL = LOCATIONS.map((l) => l.name);

interface TypeSpec {
  id: number;
  name: string;
  description: string;
  category: string;
  cores: number;
  memory: number;
  disk: number;
  cpu_type: "shared" | "dedicated";
  architecture: "x86" | "arm";
  hourly: string;
  monthly: string;
  locations: readonly string[];
}

const TYPES: readonly TypeSpec[] = [
  { id: 114, name: "cx23", description: "CX23", category: "cost_optimized", cores: 2, memory: 4, disk: 40, cpu_type: "shared", architecture: "x86", hourly: "0.0056", monthly: "3.4900", locations: EU },
  { id: 115, name: "cx33", description: "CX33", category: "cost_optimized", cores: 4, memory: 8, disk: 80, cpu_type: "shared", architecture: "x86", hourly: "0.0088", monthly: "5.4900", locations: EU },
  { id: 116, name: "cx43", description: "CX43", category: "cost_optimized", cores: 8, memory: 16, disk: 160, cpu_type: "shared", architecture: "x86", hourly: "0.0152", monthly: "9.4900", locations: EU },
  { id: 117, name: "cx53", description: "CX53", category: "cost_optimized", cores: 16, memory: 32, disk: 320, cpu_type: "shared", architecture: "x86", hourly: "0.0280", monthly: "17.4900", locations: EU },
  { id: 45, name: "cax11", description: "CAX11", category: "cost_optimized", cores: 2, memory: 4, disk: 40, cpu_type: "shared", architecture: "arm", hourly: "0.0064", monthly: "3.9900", locations: EU },
  { id: 22, name: "cpx11", description: "CPX 11", category: "regular_purpose", cores: 2, memory: 2, disk: 40, cpu_type: "shared", architecture: "x86", hourly: "0.0080", monthly: "4.9900", locations: ALL },
  { id: 23, name: "cpx21", description: "CPX 21", category: "regular_purpose", cores: 3, memory: 4, disk: 80, cpu_type: "shared", architecture: "x86", hourly: "0.0161", monthly: "9.9900", locations: ALL },
  { id: 96, name: "ccx13", description: "CCX13 Dedicated CPU", category: "general_purpose", cores: 2, memory: 8, disk: 80, cpu_type: "dedicated", architecture: "x86", hourly: "0.0233", monthly: "14.4900", locations: ALL },
];

function price(value: string) {
  const gross = (Number(value) * 1.19).toFixed(10);
  return { net: `${Number(value).toFixed(10)}`, gross };
}

/** schema.ServerType, with `prices` and per-location availability. */
export function serverTypeJson(t: TypeSpec) {
  return {
    id: t.id,
    name: t.name,
    description: t.description,
    category: t.category,
    cores: t.cores,
    memory: t.memory,
    disk: t.disk,
    storage_type: "local",
    cpu_type: t.cpu_type,
    architecture: t.architecture,
    included_traffic: 21990232555520,
    prices: t.locations.map((l) => ({
      location: l,
      price_hourly: price(t.hourly),
      price_monthly: price(t.monthly),
      included_traffic: 21990232555520,
      price_per_tb_traffic: price("1.0000"),
    })),
    deprecated: false,
    deprecation: null,
    locations: t.locations.map((l) => {
      const loc = LOCATIONS.find((x) => x.name === l)!;
      return { id: loc.id, name: loc.name, recommended: false, available: true, deprecation: null };
    }),
  };
}

export const SERVER_TYPES = TYPES;

export function findServerType(idOrName: unknown): TypeSpec | undefined {
  return TYPES.find((t) => t.name === idOrName || t.id === Number(idOrName));
}

export function findLocation(idOrName: unknown): Location | undefined {
  return LOCATIONS.find((l) => l.name === idOrName || l.id === Number(idOrName));
}

export interface ImageSpec {
  id: number;
  name: string;
  description: string;
  os_flavor: string;
  os_version: string;
  disk_size: number;
}

export const IMAGES: readonly ImageSpec[] = [
  { id: 161547269, name: "ubuntu-24.04", description: "Ubuntu 24.04", os_flavor: "ubuntu", os_version: "24.04", disk_size: 5 },
  { id: 114690387, name: "debian-12", description: "Debian 12", os_flavor: "debian", os_version: "12", disk_size: 5 },
];

export function findImage(idOrName: unknown): ImageSpec | undefined {
  return IMAGES.find((i) => i.name === idOrName || i.id === Number(idOrName));
}

/** schema.Image for a system image. */
export function imageJson(i: ImageSpec) {
  return {
    id: i.id,
    type: "system",
    status: "available",
    name: i.name,
    description: i.description,
    image_size: null,
    disk_size: i.disk_size,
    created: "2024-04-25T10:00:00+00:00",
    created_from: null,
    bound_to: null,
    os_flavor: i.os_flavor,
    os_version: i.os_version,
    architecture: "x86",
    rapid_deploy: true,
    protection: { delete: false },
    deprecated: null,
    deleted: null,
    labels: {},
  };
}
