// Receives the event {id, type, tenant, time, data}; returns the JSON body
// to POST, or null to skip this event.
export function transform(event) {
  if (event.data.status === "cancelled") {
    return null;
  }
  return {
    text: `Build ${event.data.build} on ${event.data.branch}: ${event.data.status}`,
    event_id: event.id,
    at: event.time,
  };
}
